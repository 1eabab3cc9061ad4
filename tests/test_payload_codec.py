"""Payloads in Temporal are ciphertext (relay/temporal/payload_codec.py); the codec endpoint
(Temporal's remote codec contract, api/routes/codec.py) decrypts them for the admin and the
Temporal UI."""

import base64
import contextlib
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import (
    CanceledFailureInfo,
    Failure,
    ServerFailureInfo,
    TerminatedFailureInfo,
    TimeoutFailureInfo,
)
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    ServerError,
    TerminatedError,
    TimeoutError,
)

from relay.core.crypto import KeyRing
from relay.temporal.payload_codec import (
    ENCODING,
    NOT_ENCRYPTED_MESSAGE,
    NOT_ENCRYPTED_TYPE,
    EncryptionCodec,
    relay_data_converter,
    worker_data_converter,
)
from tests.embedded import ADMIN, EmbeddedRelay, funnel, wait_for
from tests.harness import ADMIN_TOKEN, Relay
from tests.platform_server import PlatformServer

UI_ORIGIN = "http://127.0.0.1:8233"  # the harness's default RELAY_TEMPORAL_UI_PORT
EMAIL, PHONE, PAYOUT, TXID, FBCLID = (
    "Secret.Person@Example.com",
    "+1 650 555 0199",
    "4321.98",
    "TXN-SECRET-9917",
    "IwAR-secret-click",
)


def _without_search_attributes(node: Any) -> Any:
    """The history minus its search attributes, which hold IDs by design."""
    if isinstance(node, dict):
        return {
            k: _without_search_attributes(v) for k, v in node.items() if k != "searchAttributes"
        }
    if isinstance(node, list):
        return [_without_search_attributes(v) for v in node]
    return node


def _readable(node: Any) -> str:
    """Everything a reader of the history sees: the JSON text and every base64 string in it
    decoded (the payloads' data and metadata)."""
    found = [json.dumps(node)]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):  # not base64: already in the JSON text
                found.append(base64.b64decode(value, validate=True).decode("utf-8", "replace"))

    walk(node)
    return "\n".join(found)


def _payloads(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [p for item in node for p in _payloads(item)]
    if not isinstance(node, dict):
        return []
    own = [node] if {"metadata", "data"} <= node.keys() else []
    return own + [p for value in node.values() for p in _payloads(value)]


def _show(relay: EmbeddedRelay, workflow_id: str) -> dict[str, Any]:
    """`temporal workflow show --output json`, as an operator without the codec runs it."""
    temporal = str(Path(sys.executable).parent / "temporal")
    address = f"127.0.0.1:{relay.temporal_port}"
    shown = subprocess.run(
        [temporal, "workflow", "show", "-w", workflow_id, "--address", address, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    history: dict[str, Any] = json.loads(shown.stdout)
    return history


def _delivered(http: httpx.Client, conversion_id: str) -> bool:
    response = http.get(f"/api/conversions/{conversion_id}", headers=ADMIN)
    if response.status_code != 200:
        return False
    fires = response.json()["fires"]
    return len(fires) == 2 and all(f["success"] for f in fires)


def test_temporal_holds_ciphertext_and_the_ui_decodes_it(
    tmp_path: Path, platforms: PlatformServer
) -> None:
    relay = EmbeddedRelay(tmp_path, platforms.base_url)
    relay.start()
    http = httpx.Client(base_url=relay.url, timeout=10)
    try:
        network, campaign, _ = funnel(relay.url, "codec", platforms)
        click = http.get(f"/c/{campaign['id']}", params={"fbclid": FBCLID})
        click_id = click.headers["location"].rsplit("cid=", 1)[1]
        params = {"key": network["postback_key"], "click_id": click_id, "payout": PAYOUT}
        params |= {"txid": TXID, "email": EMAIL, "phone": PHONE}
        conversion_id = http.get("/postback", params=params).json()["conversion_id"]
        wait_for(lambda: _delivered(http, conversion_id), 60, "delivery")
        # The hashes the platforms received: what a history in clear would hold.
        sent = platforms.requests_for("meta", "codecmeta")[0].body["data"][0]
        hashes = [sent["user_data"]["em"][0], sent["user_data"]["ph"][0]]

        history = _show(relay, conversion_id)
        readable = _readable(_without_search_attributes(history))
        for secret in [*hashes, PAYOUT, TXID, FBCLID, EMAIL.lower()]:
            assert secret not in readable
        [started] = [e for e in history["events"] if "workflowExecutionStartedEventAttributes" in e]
        [payload] = started["workflowExecutionStartedEventAttributes"]["input"]["payloads"]
        assert base64.b64decode(payload["metadata"]["encoding"]) == ENCODING

        # The UI is started with the codec Relay serves it under the console (same origin:
        # tests/test_temporal_ui.py) ...
        settings = f"http://127.0.0.1:{relay.ui_port}/ui/temporal/api/v1/settings"
        ui = httpx.get(settings, timeout=10).json()
        assert ui["Codec"]["Endpoint"] == f"{relay.url}/ui/codec"
        # ... and /codec, for a UI on its own origin, answers its preflight and decodes for
        # the admin: the input in clear.
        origin = f"http://127.0.0.1:{relay.ui_port}"
        preflight = http.options(
            "/codec/decode",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        body = {"payloads": [payload]}
        refused = http.post("/codec/decode", json=body)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        decoded = http.post("/codec/decode", json=body, headers={**ADMIN, "Origin": origin})
        assert decoded.status_code == 200, decoded.text
        assert decoded.headers["access-control-allow-origin"] == origin
        [plain] = decoded.json()["payloads"]
        assert base64.b64decode(plain["metadata"]["encoding"]) == b"json/plain"
        text = base64.b64decode(plain["data"]).decode()
        for secret in [*hashes, TXID]:  # the click's own IDs are read by an activity
            assert secret in text
        assert json.loads(text)["conversion"]["conversion_id"] == conversion_id
    finally:
        http.close()
        relay.interrupt()


def _wire(payload: Payload) -> dict[str, Any]:
    """A payload in Temporal's JSON, as the UI and the CLI send it."""
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"txid":"T-1"}')


async def test_encode_then_decode_round_trips(relay: Relay) -> None:
    encoded = await relay.http.post(
        "/codec/encode", json={"payloads": [_wire(PLAIN)]}, headers=relay.admin
    )
    assert encoded.status_code == 200, encoded.text
    [sealed] = encoded.json()["payloads"]
    assert b"T-1" not in base64.b64decode(sealed["data"])
    decoded = await relay.http.post(
        "/codec/decode", json={"payloads": [sealed, _wire(PLAIN)]}, headers=relay.admin
    )
    # A payload recorded before the codec comes back as it is.
    assert decoded.json() == {"payloads": [_wire(PLAIN), _wire(PLAIN)]}


async def test_decode_refuses_without_the_admin_token(relay: Relay) -> None:
    body = {"payloads": [_wire(PLAIN)]}
    refusals: list[dict[bytes, bytes]] = [
        {},
        {b"Authorization": b"Bearer wrong"},
        {b"Cookie": b"relay_codec=forged"},
        {b"Cookie": b"relay_codec=\xc3\xa9"},  # non-ASCII: 401, not a 500 with a traceback
    ]
    for headers in refusals:
        refused = await relay.http.post("/codec/decode", json=body, headers=headers)
        assert refused.status_code == 401
        assert refused.json() == {
            "error": {
                "code": "unauthorized",
                "message": "a valid admin bearer token is required",
                "param": "Authorization",
            }
        }


async def test_a_session_cookie_opens_the_codec_for_the_ui(relay: Relay) -> None:
    """The UI cannot send the admin token, only cookies ("Include cross-origin credentials")."""
    form = (await relay.http.get("/codec/session")).text
    assert 'name="token"' in form
    wrong = await relay.http.post("/codec/session", data={"token": "wrong"})
    assert wrong.status_code == 401
    opened = await relay.http.post("/codec/session", data={"token": ADMIN_TOKEN})
    assert opened.status_code == 200
    cookie = opened.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/codec" in cookie
    assert ADMIN_TOKEN not in cookie
    value = cookie.split(";")[0]
    decoded = await relay.http.post(
        "/codec/decode", json={"payloads": [_wire(PLAIN)]}, headers={"Cookie": value}
    )
    assert decoded.status_code == 200, decoded.text


async def test_preflight_from_another_origin_is_not_allowed(relay: Relay) -> None:
    headers = {"Access-Control-Request-Method": "POST", "Origin": "http://evil.example"}
    refused = await relay.http.options("/codec/decode", headers=headers)
    assert "access-control-allow-origin" not in refused.headers
    allowed = await relay.http.options("/codec/decode", headers={**headers, "Origin": UI_ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
    assert allowed.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"metadata": {"encoding": "not base64!"}, "data": ""}, "payloads"),
        (
            _wire(EncryptionCodec(KeyRing.parse(KeyRing.generate_spec("gone"))).encrypt(PLAIN)),
            "payloads[0]",
        ),
    ],
    ids=["not-base64", "key-not-in-ring"],
)
async def test_undecodable_payloads_are_named(
    relay: Relay, payload: dict[str, Any], param: str
) -> None:
    answer = await relay.http.post(
        "/codec/decode", json={"payloads": [payload]}, headers=relay.admin
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["param"] == param


WORKER_KEYS = KeyRing.parse(KeyRing.generate_spec("w1"))


async def test_the_worker_refuses_payloads_in_clear() -> None:
    """What the worker reads must be encrypted with its ring: a payload in clear fails
    with a non-retryable error (its run fails once) instead of being run."""
    worker = worker_data_converter(WORKER_KEYS, None)
    sealed = await worker.encode([{"txid": "T-1"}])
    assert await worker.decode(sealed, [dict]) == [{"txid": "T-1"}]
    with pytest.raises(ApplicationError) as refused:
        await worker.decode([PLAIN], [dict])
    assert refused.value.message == NOT_ENCRYPTED_MESSAGE
    assert refused.value.type == NOT_ENCRYPTED_TYPE and refused.value.non_retryable
    # Readers (the API's client, the replayer) read it as it is.
    assert await relay_data_converter(WORKER_KEYS).decode([PLAIN], [dict]) == [{"txid": "T-1"}]


async def test_payloads_in_clear_are_run_until_the_cutoff() -> None:
    """RELAY_TEMPORAL_PLAINTEXT_UNTIL: runs recorded before the codec finish meanwhile."""
    later = datetime.now(UTC) + timedelta(hours=1)
    assert await worker_data_converter(WORKER_KEYS, later).decode([PLAIN]) == [{"txid": "T-1"}]
    past = datetime.now(UTC) - timedelta(seconds=1)
    with pytest.raises(ApplicationError):
        await worker_data_converter(WORKER_KEYS, past).decode([PLAIN])


async def test_what_the_sdk_and_the_server_write_is_not_refused() -> None:
    """None results, no payloads at all, heartbeat details and failures the server makes
    (timeouts, cancellations, terminations: no details) pass the worker's converter."""
    worker = worker_data_converter(WORKER_KEYS, None)
    assert await worker.decode(await worker.encode([None])) == [None]
    assert await worker.decode([]) == []
    details = await worker.encode(["heartbeat", 3])
    assert await worker.decode(details) == ["heartbeat", 3]
    made_by_server = [
        Failure(message="timed out", timeout_failure_info=TimeoutFailureInfo()),
        Failure(message="cancelled", canceled_failure_info=CanceledFailureInfo()),
        Failure(message="terminated", terminated_failure_info=TerminatedFailureInfo()),
        Failure(message="server", server_failure_info=ServerFailureInfo()),
    ]
    kinds = [await worker.decode_failure(failure) for failure in made_by_server]
    assert [type(k) for k in kinds] == [TimeoutError, CancelledError, TerminatedError, ServerError]
    # A failure the worker wrote (its details encrypted) reads back with its details.
    failure = Failure()
    await worker.encode_failure(ApplicationError("platform said no", {"status": 500}), failure)
    decoded = await worker.decode_failure(failure)
    assert isinstance(decoded, ApplicationError) and decoded.details == ({"status": 500},)

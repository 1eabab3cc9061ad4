"""The postback endpoint networks call: GET or POST, query string, form or JSON."""

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.answers import JSONAnswer
from api.deps import failed_credential
from api.openapi import errors
from api.params import decoded_pairs, json_object, nested_too_deeply, one_value_each
from relay.core.errors import BadParameter, Unauthorized, Unavailable
from relay.core.metrics import POSTBACK_ACCEPTED, POSTBACK_EXISTING
from relay.domain.postback_params import parse_postback
from relay.ingest.accept import accept_postback
from relay.runtime import Runtime

router = APIRouter(tags=["postbacks"])

MAX_BODY = 16 * 1024


class PostbackOut(BaseModel):
    conversion_id: str = Field(examples=["conv_3q2-7wEvtpGh2ZeyQ1bKCoSx"])
    status: str = Field(examples=["accepted"], description="accepted | existing")
    is_duplicate: bool | None = Field(
        description="false when this is the first postback for its click and event (or a "
        "reversal); null when it depends on the click, decided after the answer: the "
        "conversion record holds the authoritative value."
    )
    attributed: bool | None = Field(
        description="null: attribution needs the click and is decided after the answer."
    )


def _body_pairs(body: bytes, content_type: str) -> list[tuple[str, Any]]:
    if "json" not in content_type:
        return decoded_pairs(body)
    if nested_too_deeply(body):
        raise BadParameter("the JSON body is nested too deeply", "body")
    try:
        parsed = json.loads(body, object_pairs_hook=json_object)
    except ValueError:
        raise BadParameter("the body is not valid JSON", "body") from None
    if not isinstance(parsed, dict):
        raise BadParameter("the JSON body must be an object", "body")
    return list(parsed.items())


async def _raw_params(request: Request) -> dict[str, str]:
    """Every parameter from the query string and the body, each given at most once."""
    pairs: list[tuple[str, Any]] = list(decoded_pairs(request.scope.get("query_string", b"")))
    if request.method == "POST":
        body = await request.body()  # at most MAX_BODY bytes: api.gate refuses more
        if body:
            pairs += _body_pairs(body, request.headers.get("content-type", ""))
    return one_value_each(pairs)


@router.get(
    "/postback",
    response_model=PostbackOut,
    operation_id="postback_get",
    responses=errors(400, 401, 403, 429, 503),
)
@router.post(
    "/postback",
    response_model=PostbackOut,
    operation_id="postback_post",
    responses=errors(400, 401, 403, 413, 429, 503),
)
async def postback(request: Request) -> JSONAnswer:
    """Record a conversion; answered once it is durable in the inbox (fsynced).

    Its workflow starts a moment later. A full inbox, or an API already accepting
    `RELAY_POSTBACK_MAX_IN_FLIGHT` postbacks, answers 503 with `Retry-After`.

    Parameters (query string, form or JSON): `key`, `click_id` (clickid, cid, subid),
    `event` (status, goal, type; default sale), `payout` (sum, amount), `currency`,
    `txid` (transaction_id, tid), `email`, `phone`, `external_id`.

    A wrong `key` is 401; past `RELAY_AUTH_FAILURE_LIMIT` wrong keys from one address in
    `RELAY_AUTH_FAILURE_WINDOW_S`, 429 with `Retry-After` (a right key still passes).
    """
    # The hot path: no dependency injection, no response-model validation (measured).
    runtime: Runtime = request.app.state.runtime
    params = parse_postback(await _raw_params(request))
    if runtime.intake is None:
        raise Unavailable("the inbox is not open yet")
    try:
        answer = await accept_postback(runtime.intake, params)
    except Unauthorized as exc:  # a wrong key: counted, nothing done for a right one
        raise failed_credential(request, runtime, "postback_key", exc) from None
    # Refusals are counted where they are answered (api/gate.py).
    (POSTBACK_ACCEPTED if answer.status == "accepted" else POSTBACK_EXISTING).inc()
    return JSONAnswer(
        {
            "conversion_id": answer.conversion_id,
            "status": answer.status,
            "is_duplicate": answer.is_duplicate,
            "attributed": answer.attributed,
        }
    )

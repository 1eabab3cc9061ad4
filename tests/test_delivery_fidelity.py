"""What reaches Meta and TikTok, field for field, and what never leaves Relay."""

import logging
from datetime import timedelta
from typing import Any

import pytest

from relay.core.ids import conversion_id
from relay.core.log_redaction import AccessLogRedaction
from relay.domain.models import Conversion
from relay.domain.workflow_io import ConversionInput
from relay.store.rows import utc_now
from tests.harness import Relay
from workflows.conversion import ConversionWorkflow

EMAIL_62A1 = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"  # john_smith@
PHONE_META_E323 = "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
PHONE_TIKTOK = "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd"  # +12133734253
US = "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"
MENLO_PARK = "0007a3d64c01e23d5075203c5977c14e4f7e01a3fc570686fcc50b5e1dd42685"
CA = "6959097001d10501ac7d54c0bdb8db61420f658f2922cc26e46d536119a31126"
ZIP_94035 = "1794327a4d443904421f5ca1f3d72d0a62ba2f0770d80755ec2220fc0efb052e"


async def _server_click(relay: Relay, campaign_id: str, **fields: str) -> str:
    body = {
        "campaign_id": campaign_id,
        "ip": "168.212.226.204",
        "user_agent": "Mozilla/5.0 (Macintosh)",
        "landing_url": "https://shop.example/p/1",
        "country": "US",
        "region": "California",
        "city": "Menlo Park",
        "zip_code": "94035-1234",
        **fields,
    }
    response = await relay.http.post("/api/clicks", json=body, headers=relay.admin)
    assert response.status_code == 201, response.text
    click_id: str = response.json()["click_id"]
    return click_id


async def _deliver(relay: Relay, platform: str, **params: str) -> tuple[str, Any]:
    network = await relay.network()
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], platform)
    click_id = await _server_click(relay, campaign["id"], fbclid="IwAR-Zz_9", ttclid="E.C.P.t1")
    answer = await relay.postback(key=network["postback_key"], click_id=click_id, **params)
    conv_id: str = answer.json()["conversion_id"]
    await relay.result(conv_id)
    [request] = relay.platforms.requests_for(platform, pixel["platform_pixel_id"])
    assert request.problems == []
    return conv_id, request.body


async def test_meta_event_field_for_field(relay: Relay) -> None:
    conv_id, body = await _deliver(
        relay, "meta", email=" John_Smith@gmail.com", phone="(650)555-1212", payout="20"
    )
    event = body["data"][0]
    fbc = event["user_data"].pop("fbc")
    assert fbc.startswith("fb.1.") and fbc.endswith(".IwAR-Zz_9")
    assert event == {
        "event_name": "Purchase",
        "event_time": event["event_time"],
        "event_id": conv_id,
        "action_source": "website",
        "event_source_url": "https://shop.example/p/1",
        "user_data": {
            "em": [EMAIL_62A1],
            "ph": [PHONE_META_E323],
            "country": [US],
            "ct": [MENLO_PARK],
            "st": [CA],
            "zp": [ZIP_94035],
            "client_ip_address": "168.212.226.204",
            "client_user_agent": "Mozilla/5.0 (Macintosh)",
        },
        "custom_data": {
            "value": 20,
            "currency": "USD",
            "content_type": "product",
            "order_id": conv_id,
        },
    }
    assert abs(event["event_time"] - utc_now().timestamp()) < 60


@pytest.mark.parametrize("flavour", ["events_2_0", "pixel_track"])
async def test_tiktok_event_field_for_field(relay: Relay, flavour: str) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], "tiktok", tiktok_api=flavour)
    click_id = await _server_click(relay, campaign["id"], ttclid="E.C.P.t1", ttp="ttp-cookie")
    answer = await relay.postback(
        key=network["postback_key"],
        click_id=click_id,
        email=" ALICE_abc@gmail.com ",
        phone="(+1)2133734253",
        external_id="user_123",
        payout="12.5",
        currency="EUR",
    )
    conv_id = answer.json()["conversion_id"]
    await relay.result(conv_id)
    [request] = relay.platforms.requests_for("tiktok", pixel["platform_pixel_id"])
    assert request.problems == []
    email = "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f"
    external = "80fba0ae1c48e3978e43e4efc365e14e12ea0c830ba8ba5b9a2dafc7e3f2ab8b"
    properties = {"value": 12.5, "currency": "EUR", "content_type": "product", "order_id": conv_id}
    page = {"url": "https://shop.example/p/1"}
    if flavour == "events_2_0":
        event = request.body["data"][0]
        assert request.body["event_source"] == "web"
        assert request.body["event_source_id"] == pixel["platform_pixel_id"]
        assert event == {
            "event": "Purchase",
            "event_time": event["event_time"],
            "event_id": conv_id,
            "user": {
                "ttclid": "E.C.P.t1",
                "ttp": "ttp-cookie",
                "email": email,
                "phone": PHONE_TIKTOK,
                "external_id": external,
                "ip": "168.212.226.204",
                "user_agent": "Mozilla/5.0 (Macintosh)",
            },
            "page": page,
            "properties": properties,
        }
    else:
        assert request.body == {
            "pixel_code": pixel["platform_pixel_id"],
            "event": "CompletePayment",
            "event_id": conv_id,
            "timestamp": request.body["timestamp"],
            "context": {
                "ad": {"callback": "E.C.P.t1"},
                "page": page,
                "user": {
                    "external_id": external,
                    "phone_number": PHONE_TIKTOK,
                    "email": email,
                    "ttp": "ttp-cookie",
                },
                "user_agent": "Mozilla/5.0 (Macintosh)",
                "ip": "168.212.226.204",
            },
            "properties": properties,
        }
        assert request.body["timestamp"].endswith("Z")


async def test_unusable_identifiers_are_left_out_and_logged_with_the_reason(
    relay: Relay,
) -> None:
    conv_id, body = await _deliver(relay, "meta", email="not-an-email", phone="12")
    user = body["data"][0]["user_data"]
    assert "em" not in user and "ph" not in user
    stored = await relay.conversion(conv_id)
    assert stored["pii_dropped"] == ["email: not an email address", "phone: does not parse"] or (
        stored["pii_dropped"][0] == "email: not an email address"
        and stored["pii_dropped"][1].startswith("phone: ")
    )
    [fire] = stored["fires"]
    assert fire["success"] and "dropped email: not an email address" in fire["error"]
    assert "not-an-email" not in str(stored)


async def test_a_conversion_older_than_7_days_is_not_sendable(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], "meta")
    click_id = await _server_click(relay, campaign["id"])
    conv_id = conversion_id(click_id, "sale", "OLD-1")
    old = Conversion(
        conversion_id=conv_id,
        click_id=click_id,
        campaign_id=campaign["id"],
        network_id=network["id"],
        event_type="sale",
        currency="USD",
        txid="OLD-1",
        received_at=utc_now() - timedelta(days=8),
    )
    await relay.runtime.temporal.start_workflow(
        ConversionWorkflow.run,
        ConversionInput(conversion=old),
        id=conv_id,
        task_queue=relay.runtime.settings.task_queue,
    )
    [fire] = (await relay.result(conv_id)).fires
    assert not fire.delivered and "not sendable" in fire.error
    shown = await relay.conversion(conv_id)
    [logged] = shown["fires"]
    assert (logged["attempt"], logged["verdict"], logged["http_status"]) == (1, "permanent", None)
    assert logged["final"]
    assert [s["state"] for s in shown["sends"]] == ["not sendable"]
    assert shown["delivery_state"] == "not sendable"
    assert relay.platforms.requests_for("meta", pixel["platform_pixel_id"]) == []


def test_access_log_keeps_parameter_names_and_drops_values() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", "/postback?key=SECRET&email=a%40b.c&cid=x", "1.1", 200),
        None,
    )
    AccessLogRedaction().filter(record)
    line = record.getMessage()
    assert "SECRET" not in line and "a%40b.c" not in line
    assert "/postback?key=" in line and "&email=" in line and "&cid=" in line


async def test_no_token_or_raw_pii_in_logs_tables_or_answers(
    relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    network = await relay.network()
    campaign = await relay.campaign()
    token = "EAAB-SUPER-SECRET-TOKEN-42"
    await relay.pixel(campaign["id"], "meta", access_token=token)
    await relay.pixel(campaign["id"], "tiktok", access_token=token + "-tt")
    click_id = await relay.click(campaign["id"])
    answer = await relay.postback(
        key=network["postback_key"],
        click_id=click_id,
        email="private.person@example.org",
        phone="+44 20 7183 8750",
    )
    conv_id = answer.json()["conversion_id"]
    await relay.result(conv_id)
    secrets = (token, "private.person", "7183 8750", "442071838750", "+442071838750")
    # Relay's own records only: the test's client logs the URLs it calls on relay.test.
    logs = "\n".join(
        r.getMessage() + str(r.exc_text or "")
        for r in caplog.records
        if "http://relay.test/" not in r.getMessage()
    )
    stored = str(await relay.conversion(conv_id))
    listed = (await relay.http.get("/api/pixel-logs", headers=relay.admin)).text
    tables = str(
        relay.runtime.clickhouse.query(
            "SELECT * FROM conversions FINAL WHERE conversion_id = {c:String}",
            parameters={"c": conv_id},
        ).result_rows
    ) + str(
        relay.runtime.clickhouse.query(
            "SELECT * FROM pixel_fires WHERE conversion_id = {c:String}",
            parameters={"c": conv_id},
        ).result_rows
    )
    history = await relay.runtime.temporal.get_workflow_handle(conv_id).fetch_history()
    for secret in secrets:
        for where, text in (
            ("logs", logs),
            ("API", stored + listed),
            ("tables", tables),
            ("history", str(history.to_json_dict())),
        ):
            assert secret not in text, f"{secret!r} leaked into {where}"

"""Input edges (issue 10 item 6): payouts that round past the bound, duplicate JSON keys, C1
controls and bidi overrides, and `/api/event-id` refusing exactly what `/postback` refuses.
Invisible characters (issue 18 #12): every format character (Unicode category Cf) and the
Hangul fillers are refused in a postback's values, so two txids that look identical are one."""

import sys
import unicodedata
from decimal import Decimal

import pytest

from relay.core.errors import BadParameter
from relay.domain.postback_params import parse_postback
from tests.harness import Relay, network_conversions

MANY = "&".join(f"p{i}=x" for i in range(64))

# A query string (after the postback's key), and the parameter its 400 must name.
EDGES = [
    ("click_id=c1&payout=999999999999.999999999999", "payout"),  # rounds to 10^12
    ("click_id=c1&payout=999999999999.9999995", "payout"),
    ("click_id=c1&payout=ten", "payout"),
    ("click_id=c1&currency=XYZ", "currency"),
    ("click_id=c1&email=" + "e" * 300, "email"),
    ("click_id=c1&click_id=c2", "click_id"),
    ("click_id=c1&cid=c2", "click_id"),
    ("click_id=%FF%FE", "click_id"),  # not UTF-8
    ("click_id=c%C2%851", "click_id"),  # U+0085 NEXT LINE, a C1 control
    ("click_id=c1&txid=t%C2%9B31m", "txid"),  # U+009B CONTROL SEQUENCE INTRODUCER
    ("click_id=c1&email=%E2%80%AEmoc.elpmaxe%40a", "email"),  # U+202E RIGHT-TO-LEFT OVERRIDE
    ("click_id=c1&phone=%E2%80%AA123", "phone"),  # U+202A LEFT-TO-RIGHT EMBEDDING
    ("click_id=c1&external_id=x%E2%81%A6y", "external_id"),  # U+2066 LEFT-TO-RIGHT ISOLATE
    ("click_id=c1&event=sale%E2%81%A9", "event"),  # U+2069 POP DIRECTIONAL ISOLATE
    ("click_id=c1&event=a%09b", "event"),  # C0, refused before as well
    ("click_id=c1&txid=ORDER%E2%80%8B1", "txid"),  # U+200B ZERO WIDTH SPACE
    ("click_id=c%E2%81%A01", "click_id"),  # U+2060 WORD JOINER
    ("click_id=c1&event=%EF%BB%BFsale", "event"),  # U+FEFF BYTE ORDER MARK
    ("click_id=c1&currency=US%E2%80%8ED", "currency"),  # U+200E LEFT-TO-RIGHT MARK
    ("click_id=c1&email=a%C2%AD%40b.example", "email"),  # U+00AD SOFT HYPHEN
    ("click_id=c1&tid=T%E3%85%A41", "txid"),  # U+3164 HANGUL FILLER, under an alias
    ("payout=1", "click_id"),
    ("click_id=c1&" + MANY, "body"),
]


@pytest.mark.parametrize(("query", "param"), EDGES)
async def test_event_id_refuses_what_postback_refuses_with_the_same_error(
    relay: Relay, query: str, param: str
) -> None:
    network = await relay.network()
    postback = await relay.http.get(f"/postback?key={network['postback_key']}&{query}")
    event_id = await relay.http.get(f"/api/event-id?{query}")
    assert postback.status_code == 400, postback.text
    assert postback.json()["error"]["param"] == param
    assert (event_id.status_code, event_id.json()) == (postback.status_code, postback.json())
    assert network_conversions(relay.runtime.clickhouse, network["id"]) == 0


async def test_event_id_and_postback_give_the_same_id_for_the_same_input(relay: Relay) -> None:
    network = await relay.network()
    query = "cid=c-edge&status=Purchase&tid=T-1&payout=9.5&currency=eur&email=a%40b.example"
    postback = await relay.http.get(f"/postback?key={network['postback_key']}&{query}")
    event_id = await relay.http.get(f"/api/event-id?{query}")
    assert postback.status_code == 200 and event_id.status_code == 200
    assert event_id.json()["event_id"] == postback.json()["conversion_id"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ('{"click_id": "c1", "payout": "1", "payout": "1000"}', "payout"),
        ('{"click_id": "c1", "payout": 5, "payout": "5"}', "payout"),  # a number and a string
        ('{"click_id": "c1", "click_id": "c2"}', "click_id"),
        ('{"click_id": "c1", "email": "a@b.example", "email": null}', "email"),
    ],
)
async def test_duplicate_json_keys_are_refused_naming_the_key(
    relay: Relay, body: str, param: str
) -> None:
    network = await relay.network()
    response = await relay.http.post(
        f"/postback?key={network['postback_key']}",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert "given twice" in error["message"]
    assert network_conversions(relay.runtime.clickhouse, network["id"]) == 0


async def test_a_json_key_repeated_with_the_same_value_is_read_once(relay: Relay) -> None:
    """As in a query string, where a repeat with the same value is accepted."""
    network = await relay.network()
    response = await relay.http.post(
        f"/postback?key={network['postback_key']}",
        content='{"click_id": "c-same", "payout": "2.5", "payout": "2.5"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text


def test_payout_bound_holds_after_rounding_to_the_stored_six_decimals() -> None:
    def payout(value: str) -> Decimal | None:
        return parse_postback({"key": "k", "click_id": "c", "payout": value}).payout

    assert payout("999999999999.9999994") == Decimal("999999999999.999999")
    assert payout("0.0000004") == Decimal("0.000000")
    for value in ("999999999999.9999995", "999999999999.999999999999", "1000000000000"):
        with pytest.raises(BadParameter, match="10\\^12") as refused:
            payout(value)
        assert refused.value.param == "payout"


# Inside the name: surrounding whitespace, U+0085 included for Python, is trimmed.
@pytest.mark.parametrize("event", ["sa\u0085le", "sale\u202e", "\u2067sale", "sa\x1ble"])
async def test_admin_event_names_refuse_c1_controls_and_bidi_overrides(
    relay: Relay, event: str
) -> None:
    campaign = await relay.campaign()
    response = await relay.http.post(
        f"/api/campaigns/{campaign['id']}/postbacks",
        json={"url_template": "https://tracker.example/cb?cid={click_id}", "events": [event]},
        headers=relay.admin,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "events.0"


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ("[" * 33 + "]" * 33, "body"),  # deeper than 32: refused before parsing
        ("[" * 5000 + "]" * 5000, "body"),  # parsed on 3.13, a RecursionError on 3.11
        ("[" * 31 + "]" * 31, "click_id"),  # parsed, then refused as not a string
    ],
)
async def test_json_nesting_is_bounded_the_same_on_every_python(
    relay: Relay, value: str, param: str
) -> None:
    response = await relay.http.post(
        "/postback",
        content='{"key": "k", "click_id": ' + value + "}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_brackets_inside_json_strings_are_not_nesting(relay: Relay) -> None:
    network = await relay.network()
    response = await relay.http.post(
        "/postback",
        json={"key": network["postback_key"], "click_id": "c-[{" * 30, "txid": '\\"[' * 20},
    )
    assert response.status_code == 200, response.text


# U+200B-U+200F: zero-width space, non-joiner, joiner, the LTR and RTL marks; U+2060 word
# joiner; U+FEFF byte order mark; U+00AD soft hyphen; U+061C Arabic letter mark; U+180E
# Mongolian vowel separator; U+2061-U+2064 invisible operators; U+206A-U+206F deprecated
# format characters; U+FFF9-U+FFFB interlinear annotation; U+E0001 and U+E0020 tags; the
# bidi embeddings, overrides and isolates; C0, DEL and C1 controls; the line and paragraph
# separators; the Hangul fillers.
INVISIBLE = [
    *"\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad\u061c\u180e\u2061\u2064",
    *"\u206a\u206f\ufff9\ufffb\U000e0001\U000e0020",
    *"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    *"\x00\x1b\x7f\x80\x85\x9f\u2028\u2029",
    *"\u115f\u1160\u3164\uffa0",
]


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_invisible_and_control_characters_are_refused_in_every_postback_value(char: str) -> None:
    for param in ("txid", "event", "click_id", "currency", "email", "phone", "external_id"):
        value = f"U{char}S" if param == "currency" else f"ORDER{char}1"  # 3 characters
        raw = {"key": "k", "click_id": "c1", param: value}
        with pytest.raises(BadParameter) as refused:
            parse_postback(raw)
        assert refused.value.param == param
        assert f"U+{ord(char):04X}" in refused.value.message
    with pytest.raises(BadParameter):
        parse_postback({"key": f"k{char}k", "click_id": "c1"})


def test_every_format_character_is_refused_in_a_txid() -> None:
    formats = [c for c in map(chr, range(sys.maxunicode + 1)) if unicodedata.category(c) == "Cf"]
    assert len(formats) > 150
    for char in formats:
        with pytest.raises(BadParameter):
            parse_postback({"key": "k", "click_id": "c1", "txid": f"ORDER{char}1"})


@pytest.mark.parametrize("text", ["café", "日本", "Größe", "مرحبا", "ORDER-ñ-1"])
async def test_letters_of_any_script_are_still_accepted(relay: Relay, text: str) -> None:
    network = await relay.network()
    query = {"click_id": f"c-{text}", "event": text, "txid": text, "external_id": text}
    postback = await relay.postback(key=network["postback_key"], **query)
    event_id = await relay.http.get("/api/event-id", params=query)
    assert postback.status_code == 200, postback.text
    assert event_id.json()["event_id"] == postback.json()["conversion_id"]

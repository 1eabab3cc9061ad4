"""Normalization and hashing against the vectors of platforms.md 1.2, 1.4 (b)/(d) and 2.4.

Where Meta's SDK and Meta's doc disagree (platforms.md 1.3) the doc's result is expected;
those rows are marked "doc, not SDK".
"""

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.destinations.normalize import (
    UnusableValue,
    hash_user_identifiers,
    looks_hashed,
    meta_hash,
    normalize_city,
    normalize_country,
    normalize_email,
    normalize_external_id,
    normalize_name,
    normalize_state,
    normalize_zip,
    sha256_hex,
    tiktok_hash,
    to_e164,
)

# Inputs and the normalized form Relay hashes; "doc, not SDK" marks rows where Meta's SDK
# gives something else and the doc is followed (platforms.md 1.3).
META_VECTORS = [
    # field, raw, default_region (the click's country), normalized
    ("em", "John_Smith@gmail.com", None, "john_smith@gmail.com"),
    ("em", "  John_Smith@Gmail.com ", None, "john_smith@gmail.com"),
    ("em", "Person@Example.com", None, "person@example.com"),
    ("em", "foo(.bar)@baz.com", None, "foo(.bar)@baz.com"),
    ("em", "Joe@Eg.com ", None, "joe@eg.com"),
    ("ph", "+1 (650) 555-1212", None, "16505551212"),
    ("ph", "16505551212", "US", "16505551212"),
    ("ph", "(650)555-1212", "US", "16505551212"),  # doc, not SDK (SDK adds no country code)
    ("ph", "+1.650.555.1212", None, "16505551212"),  # doc, not SDK (SDK raises on dots)
    ("ph", "+44 844 412 4653", None, "448444124653"),
    ("ph", "0044 844 412 4653", "GB", "448444124653"),
    ("ph", "+442071838750", None, "442071838750"),
    ("fn", "Mary", None, "mary"),
    ("fn", " Valéry ", None, "valéry"),
    ("fn", "정", None, "정"),
    ("ln", "Smith", None, "smith"),
    ("fn", "O'Brien", None, "obrien"),  # doc, not SDK (SDK keeps "'")
    ("fn", "Mary-Jane", None, "maryjane"),  # doc, not SDK
    ("ct", "South San Francisco", None, "southsanfrancisco"),
    ("ct", "Menlo Park", None, "menlopark"),
    ("ct", "Seattle-98121", None, "seattle"),
    ("ct", "Washington D.C", None, "washingtondc"),
    ("ct", "St. John's", None, "stjohns"),  # doc, not SDK (SDK keeps "'")
    ("ct", "New York", None, "newyork"),
    ("st", "CA", "US", "ca"),
    ("st", " California ", "US", "ca"),  # doc ("2-character ANSI"), not SDK
    ("st", "N.Y.", None, "ny"),
    ("st", "AZ", "US", "az"),
    ("zp", "94035", "US", "94035"),
    ("zp", "98121-4892", "US", "98121"),
    ("zp", "  98121", None, "98121"),
    ("zp", "981214892", "US", "98121"),  # doc: first 5 digits of a US ZIP
    ("zp", "NR9 5AL", "GB", "nr95al"),
    ("zp", "M1 1AE", "GB", "m11ae"),
    ("zp", "98-121-4892", None, "98"),  # the SDK cuts at the first dash
    ("zp", "1987", "AU", "1987"),
    ("zp", "75018", "FR", "75018"),
    ("country", "US", None, "us"),
    ("country", "  us  ", None, "us"),
    ("country", "*****US*****", None, "us"),
    ("external_id", " User-123 ", None, "User-123"),
]

# SHA-256 values printed in Meta's doc (1.2, 1.4 d) and by the SDK (1.4 b).
OFFICIAL_HASHES = {
    "john_smith@gmail.com": "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
    "person@example.com": "542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345",
    "foo(.bar)@baz.com": "10a76da9aea6223dd1d4d903e3458313d91a22481b1e269ea93199a8920aa6b5",
    "joe@eg.com": "8830eedd6c6b5ea97d181563a349476ca1bb25ace1f94b5c5e48d9cad727941b",
    "16505551212": "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",
    "448444124653": "dc008fda46e2e64002cf2f82a4906236282d431c4f75e5b60bfe79fc48546383",
    "442071838750": "8d5f937f3a5590634cbe975951a6aa1543170671ce6e73cce4062f4e8c288417",
    "mary": "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec",
    "valéry": "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c",
    "정": "8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14",
    "smith": "6627835f988e2c5e50533d491163072d3f4f41f5c8b04630150debb3722ca2dd",
    "southsanfrancisco": "e6a4de398edea64e0e057033d684bebe76c975d00b1c919471703d318fb05d7f",
    "menlopark": "0007a3d64c01e23d5075203c5977c14e4f7e01a3fc570686fcc50b5e1dd42685",
    "seattle": "3151a8f227c0e11fd9a7fd1aa24ebfee734503dea095c22c3b2fae09d62eeb25",
    "washingtondc": "911fa18df8b2a4ff2652c32a0efa25516115d6fb0170849a41f38113e5371fe0",
    "ca": "6959097001d10501ac7d54c0bdb8db61420f658f2922cc26e46d536119a31126",
    "ny": "1b06e2003f8420d6fa42badd8f77ec0f706b976b7a48b13c567dc5a559681683",
    "94035": "1794327a4d443904421f5ca1f3d72d0a62ba2f0770d80755ec2220fc0efb052e",
    "98121": "a77c0363c8e376696caa1c871266c54476d5ac554bfd6eeb4f42f6a8d607e8fe",
    "nr95al": "1d62287dd0994fc3728f000dea1ee560d7a81120de2a911871adbad59d64701d",
    "m11ae": "1dc694c2070e697769fb959b50671d76cafd430d8ca191fbdd0affcaea344ac5",
    "98": "29db0c6782dbd5000559ef4d9e953e300e2b479eed26d887ef3f92b921c06a67",
    "us": "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621",
}
E323 = OFFICIAL_HASHES["16505551212"]


@pytest.mark.parametrize(("field", "raw", "region", "normalized"), META_VECTORS)
def test_meta_hash_vectors(field: str, raw: str, region: str | None, normalized: str) -> None:
    expected = OFFICIAL_HASHES.get(normalized, sha256_hex(normalized))
    assert meta_hash(field, raw, default_region=region) == expected


@pytest.mark.parametrize(("normalized", "digest"), OFFICIAL_HASHES.items())
def test_official_hashes_are_all_exercised(normalized: str, digest: str) -> None:
    assert sha256_hex(normalized) == digest
    assert normalized in {row[3] for row in META_VECTORS}


@pytest.mark.parametrize(
    ("field", "raw", "region"),
    [
        ("country", "United States", None),  # a name, not an alpha-2 code (as the SDK)
        ("country", "*****UU*****", None),
        ("country", "UK", None),
        ("ph", "44-12390821300A", "GB"),
        ("ph", "0650 555 1212", "US"),  # SDK gives 6505551212, without a country code
        ("ph", "(650)555-1212", None),  # no country code and no region to supply one
        ("ph", "{phone}", "US"),
        ("ph", "555-1212", "US"),  # local only: no area code
        ("em", "not-an-email", None),
        ("fn", " -'. ", None),
        ("ct", "12345", None),
        ("zp", " - ", None),
        ("external_id", "   ", None),
    ],
)
def test_meta_hash_unusable(field: str, raw: str, region: str | None) -> None:
    with pytest.raises(UnusableValue) as caught:
        meta_hash(field, raw, default_region=region)
    assert caught.value.field == field
    assert not raw.strip() or raw.strip() not in caught.value.reason
    assert str(caught.value) == f"{field}: {caught.value.reason}"


# The SDK's own invalid cases (platforms.md 1.4 a), plus a line break and a blank.
@pytest.mark.parametrize("raw", ["a", "abc", "a@b", "@b.c", ".c", "@", "a@b.c\nx", "  "])
def test_invalid_emails(raw: str) -> None:
    with pytest.raises(UnusableValue):
        normalize_email(raw)


# The SDK's own valid cases (platforms.md 1.4 a): special characters are kept.
SDK_VALID_EMAILS = ["a@b.c", "foo@bar.co", "foo@bar.com", '"a b"@c.d', "a\\@b@c.d"]
SDK_VALID_EMAILS += ["f`oo@bar.com", "fo'o@bar.com"]


@pytest.mark.parametrize("raw", SDK_VALID_EMAILS)
def test_valid_emails_keep_special_characters(raw: str) -> None:
    assert normalize_email(raw) == raw.lower()
    assert meta_hash("em", raw) == sha256_hex(raw.lower())


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(+1)2133734253", None, "+12133734253"),
        ("+1 (650) 555-1212", None, "+16505551212"),
        ("(650)555-1212", "US", "+16505551212"),
        ("(650)555-1212", "us", "+16505551212"),
        ("0044 844 412 4653", "GB", "+448444124653"),
        ("+44 844 412 4653", None, "+448444124653"),
        ("07911 123456", "GB", "+447911123456"),
    ],
)
def test_to_e164(raw: str, region: str | None, expected: str) -> None:
    assert to_e164(raw, region) == expected


TIKTOK_VECTORS = [
    # field, raw, default_region, the string TikTok hashes (platforms.md 2.4)
    ("email", " ALICE_abc@gmail.com ", None, "alice_abc@gmail.com"),
    ("email", "bugsbunny@warnerbros.com", None, "bugsbunny@warnerbros.com"),
    ("phone", "(+1)2133734253", None, "+12133734253"),
    ("phone", "213-373-4253", "US", "+12133734253"),
    ("external_id", "user_123", None, "user_123"),
    ("external_id", " user_123 ", None, "user_123"),
]
TIKTOK_OFFICIAL_HASHES = {
    "alice_abc@gmail.com": "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f",
    "bugsbunny@warnerbros.com": "67e28cdcc3e845d3a4da05ca9fe5ddb7320a83b4cc2167f0555a3b04f63511e3",
    "+12133734253": "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd",
    "user_123": "80fba0ae1c48e3978e43e4efc365e14e12ea0c830ba8ba5b9a2dafc7e3f2ab8b",
}


@pytest.mark.parametrize(("field", "raw", "region", "hashed"), TIKTOK_VECTORS)
def test_tiktok_hash_vectors(field: str, raw: str, region: str | None, hashed: str) -> None:
    expected = TIKTOK_OFFICIAL_HASHES[hashed]
    assert sha256_hex(hashed) == expected
    assert tiktok_hash(field, raw, default_region=region) == expected


def test_tiktok_phone_keeps_plus_and_meta_drops_it() -> None:
    without_plus = meta_hash("ph", "(+1)2133734253")
    assert without_plus.startswith("1f81adb3")
    assert without_plus == sha256_hex("12133734253")
    assert tiktok_hash("phone", "(+1)2133734253") != without_plus


@pytest.mark.parametrize(
    ("e164", "expected"),
    [
        ("+12345678901234", "00a63bd0437d6ca0fa7b95c00ab2e7c020faa71440e5246750d6b517689e6777"),
        ("+98765432109876", "ce7b12d132a021393e793d21d6e8e673ac06042922b73cc10f2d7db597657a4a"),
    ],
)
def test_segment_phone_vectors(e164: str, expected: str) -> None:
    # Segment hashes these with '+'; they are not possible numbers, so Relay refuses the
    # raw digits rather than guess a country, and passes the hashes through untouched.
    assert sha256_hex(e164) == expected
    assert tiktok_hash("phone", expected.upper()) == expected
    with pytest.raises(UnusableValue):
        tiktok_hash("phone", e164.removeprefix("+"))


@pytest.mark.parametrize("raw", ["a" * 64, " " + "a" * 64 + " ", "A" * 64, E323.upper()])
def test_hashed_values_pass_through(raw: str) -> None:
    assert looks_hashed(raw)
    for field in ("em", "ph", "fn", "ct", "st", "zp", "country", "external_id"):
        assert meta_hash(field, raw) == raw.strip().lower()
    for field in ("email", "phone", "external_id"):
        assert tiktok_hash(field, raw) == raw.strip().lower()


@pytest.mark.parametrize("raw", ["a" * 63, "g" * 64, "a" * 65, "a" * 32])
def test_not_hashed(raw: str) -> None:
    assert not looks_hashed(raw)


def test_unknown_field_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        meta_hash("ge", "f")
    with pytest.raises(ValueError, match="not a hashed TikTok"):
        tiktok_hash("zip", "12345")


def test_state_names_map_only_for_the_us() -> None:
    assert normalize_state("New York") == "ny"
    assert normalize_state("Georgia", country="GE") == "georgia"
    assert normalize_state("Ontario", country="CA") == "ontario"


def test_hash_user_identifiers() -> None:
    hashes = hash_user_identifiers(" Joe@Eg.com", "(650)555-1212", " User-123 ", "US")
    assert hashes.email == "8830eedd6c6b5ea97d181563a349476ca1bb25ace1f94b5c5e48d9cad727941b"
    assert hashes.phone_meta == E323
    assert hashes.phone_tiktok == sha256_hex("+16505551212")
    assert hashes.external_id == sha256_hex("User-123")
    assert hashes.dropped == ()


def test_hash_user_identifiers_drops_without_leaking() -> None:
    hashes = hash_user_identifiers("joe(at)example", "555-1212", "  ", None)
    assert (hashes.email, hashes.phone_meta, hashes.phone_tiktok, hashes.external_id) == (None,) * 4
    assert hashes.dropped == ("email: not an email address", "phone: no country code and no region")
    assert hash_user_identifiers(None, "", None, "US").dropped == ()


def test_prehashed_phone_goes_to_both_platforms() -> None:
    hashes = hash_user_identifiers(None, E323.upper(), None, None)
    assert hashes.phone_meta == hashes.phone_tiktok == E323


NORMALIZERS: list[Callable[[str], str]] = [
    normalize_email,
    normalize_name,
    normalize_city,
    normalize_state,
    normalize_zip,
    normalize_country,
    normalize_external_id,
    lambda raw: to_e164(raw, "US"),
]
TEXT = st.one_of(
    st.text(),
    st.emails(),
    st.from_regex(r"\+?[0-9 ()\-.]{7,16}", fullmatch=True),
    st.sampled_from(["US", " gb ", "California", "N.Y.", "Valéry", "O'Brien", "98121-4892"]),
)


@given(raw=TEXT, which=st.integers(0, len(NORMALIZERS) - 1))
def test_normalization_is_idempotent(raw: str, which: int) -> None:
    normalize = NORMALIZERS[which]
    try:
        once = normalize(raw)
    except UnusableValue:
        return
    assert normalize(once) == once


@given(
    raw=TEXT,
    field=st.sampled_from(["em", "ph", "fn", "ln", "ct", "st", "zp", "country", "external_id"]),
)
def test_a_hash_is_never_rehashed(raw: str, field: str) -> None:
    try:
        hashed = meta_hash(field, raw, default_region="US")
    except UnusableValue:
        return
    assert meta_hash(field, hashed, default_region="US") == hashed
    assert tiktok_hash("external_id", hashed) == hashed

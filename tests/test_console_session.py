"""The console's session cookie (api/services/sessions.py): signed, expiring, tied to the
admin token, kept across restarts and key rotation, and never carrying the token."""

import pytest

from api.services import sessions
from relay.core.crypto import KeyRing

TOKEN = "admin-token-for-sessions"
NOW = 1_800_000_000.0


def test_a_session_reads_back_until_it_expires() -> None:
    keys = KeyRing.parse(KeyRing.generate_spec("a"))
    made, cookie = sessions.new_session(keys, TOKEN, now=NOW)
    assert TOKEN not in cookie and made.csrf_token not in cookie
    assert sessions.read_session(keys, TOKEN, cookie, now=NOW + 60) == made
    last = NOW + sessions.SESSION_TTL_S
    assert sessions.read_session(keys, TOKEN, cookie, now=last - 1) == made
    assert sessions.read_session(keys, TOKEN, cookie, now=last) is None


def test_a_forged_or_altered_cookie_is_refused() -> None:
    keys = KeyRing.parse(KeyRing.generate_spec("a"))
    _, cookie = sessions.new_session(keys, TOKEN, now=NOW)
    session_id, expires, mac = cookie.split(".")
    later = f"{session_id}.{int(expires) + 86_400}.{mac}"
    # Another ID: its first character changed (a random ID can start with either letter).
    other_id = f"{'y' if session_id[0] == 'x' else 'x'}{session_id[1:]}.{expires}.{mac}"
    for forged in (later, other_id, f"{session_id}.{expires}.", "", "a.b.c", cookie + "x"):
        assert sessions.read_session(keys, TOKEN, forged, now=NOW) is None, forged


def test_a_new_admin_token_or_another_ring_ends_every_session() -> None:
    keys = KeyRing.parse(KeyRing.generate_spec("a"))
    _, cookie = sessions.new_session(keys, TOKEN, now=NOW)
    assert sessions.read_session(keys, "a-new-admin-token", cookie, now=NOW) is None
    other = KeyRing.parse(KeyRing.generate_spec("a"))
    assert sessions.read_session(other, TOKEN, cookie, now=NOW) is None


def test_a_new_epoch_ends_every_session_and_epoch_0_signs_as_before() -> None:
    keys = KeyRing.parse(KeyRing.generate_spec("a"))
    made, cookie = sessions.new_session(keys, TOKEN, now=NOW)  # before epochs existed
    assert sessions.read_session(keys, TOKEN, cookie, now=NOW, epoch=0) == made
    assert sessions.read_session(keys, TOKEN, cookie, now=NOW, epoch=1) is None
    later, cookie = sessions.new_session(keys, TOKEN, now=NOW, epoch=1)
    assert sessions.read_session(keys, TOKEN, cookie, now=NOW, epoch=1) == later
    assert sessions.read_session(keys, TOKEN, cookie, now=NOW, epoch=2) is None


def test_sessions_survive_a_restart_and_a_key_rotation() -> None:
    old_spec = KeyRing.generate_spec("old")
    made, cookie = sessions.new_session(KeyRing.parse(old_spec), TOKEN, now=NOW)
    restarted = KeyRing.parse(old_spec)
    assert sessions.read_session(restarted, TOKEN, cookie, now=NOW) == made
    rotated = KeyRing.parse(f"{KeyRing.generate_spec('new')},{old_spec}")
    assert sessions.read_session(rotated, TOKEN, cookie, now=NOW) == made


def test_the_csrf_token_is_the_sessions_own() -> None:
    keys = KeyRing.parse(KeyRing.generate_spec("a"))
    one, _ = sessions.new_session(keys, TOKEN, now=NOW)
    two, _ = sessions.new_session(keys, TOKEN, now=NOW)
    assert sessions.csrf_matches(one, one.csrf_token)
    assert not sessions.csrf_matches(one, two.csrf_token)
    assert not sessions.csrf_matches(one, "")


def test_a_console_cookie_is_no_codec_session_nor_the_reverse() -> None:
    keys = KeyRing.parse(KeyRing.generate_spec("a"))
    _, console = sessions.new_session(keys, TOKEN, now=NOW)
    made, codec = sessions.new_session(keys, TOKEN, now=NOW, purpose=sessions.CODEC)
    assert sessions.read_session(keys, TOKEN, codec, now=NOW, purpose=sessions.CODEC) == made
    assert sessions.read_session(keys, TOKEN, console, now=NOW, purpose=sessions.CODEC) is None
    assert sessions.read_session(keys, TOKEN, codec, now=NOW) is None


def test_a_revoked_session_is_ended_and_the_list_keeps_live_sessions_only() -> None:
    """Issue 18 #11: signing out ends the session on the server, a copied cookie too."""
    keys = KeyRing.parse(KeyRing.generate_spec("a"))
    one, cookie_one = sessions.new_session(keys, TOKEN, now=NOW)
    two, cookie_two = sessions.new_session(keys, TOKEN, now=NOW + 100)
    state = sessions.SessionState()
    assert state.read(keys, TOKEN, cookie_one, now=NOW) == one
    stored = state.revoking(one, now=NOW)
    assert stored is not None
    state = sessions.SessionState.parse(None, stored)
    assert state.read(keys, TOKEN, cookie_one, now=NOW) is None
    assert state.read(keys, TOKEN, cookie_two, now=NOW) == two
    # Once `one` would have expired anyway, the next revocation leaves it out.
    later = sessions.SessionState.parse(None, state.revoking(two, now=one.expires))
    assert dict(later.revoked) == {two.session_id: two.expires}


def test_past_the_revoked_cap_a_sign_out_must_end_every_session() -> None:
    keys = KeyRing.parse(KeyRing.generate_spec("a"))
    revoked = {f"s{i}": int(NOW) + 3600 for i in range(sessions.MAX_REVOKED)}
    state = sessions.SessionState(epoch=3, revoked=revoked)
    session, _ = sessions.new_session(keys, TOKEN, now=NOW, epoch=3)
    assert state.revoking(session, now=NOW) is None  # the caller moves the epoch on


def test_stored_session_state_that_relay_did_not_write_fails_closed() -> None:
    assert sessions.SessionState.parse("2", '{"a":1}') == sessions.SessionState(2, {"a": 1})
    assert sessions.SessionState.parse(None, None) == sessions.SessionState()
    for epoch, revoked in (("x", None), (None, "[1]"), (None, '{"a":"b"}'), (None, "{")):
        with pytest.raises(ValueError):
            sessions.SessionState.parse(epoch, revoked)

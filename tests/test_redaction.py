"""Redaction at ingest: keyed HMAC tokens replace secrets and personal data."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pyarrow as pa
import pytest
from otlp_factory import span, trace_request

from sloengine.engine import Engine
from sloengine.ingest import Redactor
from sloengine.ingest.redact import luhn_ok
from sloengine.settings import load_settings

KEY = b"test-key"


def token(rule: str, value: str) -> str:
    return f"[redacted:{rule}:{hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()[:16]}]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("contact jane.doe@example.com now",
         f"contact {token('email', 'jane.doe@example.com')} now"),
        ("Authorization: Bearer abc.DEF-123_x=",
         f"Authorization: {token('bearer', 'Bearer abc.DEF-123_x=')}"),
        ("card 4111 1111 1111 1111 declined",
         f"card {token('card', '4111 1111 1111 1111')} declined"),
        ("card 4111111111111111", f"card {token('card', '4111111111111111')}"),
        # fails the Luhn check: not a card number, kept
        ("order 4111111111111112", "order 4111111111111112"),
        # an epoch-millisecond timestamp is not a card
        ("at 1764000000000", "at 1764000000000"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature",
         f"jwt {token('jwt', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature')}"),
        ("nothing to see", "nothing to see"),
    ],
)
def test_value_patterns(text: str, expected: str) -> None:
    r = Redactor(KEY)
    arr, n = r.string_array(pa.array([text, None]))
    assert arr.to_pylist() == [expected, None]
    assert n == (0 if expected == text else 1)


def test_luhn() -> None:
    assert luhn_ok("4111 1111 1111 1111")
    assert luhn_ok("5555555555554444")
    assert not luhn_ok("5555555555554445")


def test_keys_and_patterns_in_stored_spans(tmp_path: Path, engine: Engine) -> None:
    sp1 = span(1, 1, attrs={"user.email": "a@b.io", "note": "mail a@b.io please",
                            "http.request.header.authorization": ["Basic dXNlcjpwYXNz"],
                            "enduser.id": 42, "http.route": "/x"})
    sp2 = span(1, 2, attrs={"user.email": "a@b.io"})
    f = tmp_path / "r.traces.pb"
    f.write_bytes(trace_request([sp1, sp2]).SerializeToString())
    [r] = engine.ingest([f])
    assert any(w.startswith("redacted ") for w in r.warnings)
    rows = engine.store.rows(
        "SELECT attr_str, attr_int, attr_json, http_route FROM spans ORDER BY span_id")
    (s1, i1, j1, route), (s2, _, _, _) = rows
    assert "a@b.io" not in str(rows) and "dXNlcjpwYXNz" not in str(rows)
    # the same value gets the same token: records still join on it
    assert s1["user.email"] == s2["user.email"]
    assert s1["user.email"].startswith("[redacted:user.email:")
    assert s1["note"].startswith("mail [redacted:email:") and s1["note"].endswith(" please")
    assert "enduser.id" not in i1 or i1["enduser.id"] is None
    assert j1 is not None and "[redacted:http.request.header.authorization:" in j1
    assert route == "/x"  # promoted semantic-convention columns are not touched


def test_redaction_key_from_settings_and_disabled(tmp_path: Path) -> None:
    f = tmp_path / "r.traces.pb"
    f.write_bytes(trace_request([span(1, 1, attrs={"user.email": "a@b.io"})]).SerializeToString())
    s = load_settings(None, db=tmp_path / "a.duckdb", redaction={"key": "test-key"})
    with Engine(s) as e:
        e.ingest([f])
        assert e.store.one("SELECT attr_str['user.email'] FROM spans") == token(
            "user.email", "a@b.io")
    s = load_settings(None, db=tmp_path / "b.duckdb", redaction={"enabled": False})
    with Engine(s) as e:
        e.ingest([f])
        assert e.store.one("SELECT attr_str['user.email'] FROM spans") == "a@b.io"


def test_custom_keys_without_patterns(tmp_path: Path) -> None:
    """Keys only, no value patterns (and no default rules): string maps are redacted by key
    (this used to fail: the empty pattern set gave no mask to combine)."""
    f = tmp_path / "r.traces.pb"
    f.write_bytes(trace_request([span(1, 1, attrs={"customer.ref": "C-77", "note": "a@b.io",
                                                   "n": 3})]).SerializeToString())
    s = load_settings(None, db=tmp_path / "k.duckdb", redaction={
        "key": "test-key", "keys": ["customer.ref"], "use_default_rules": False})
    with Engine(s) as e:
        [r] = e.ingest([f])
        assert not r.errors
        row = e.store.rows("SELECT attr_str, attr_int FROM spans")[0]
    assert row == ({"customer.ref": token("customer.ref", "C-77"), "note": "a@b.io"}, {"n": 3})

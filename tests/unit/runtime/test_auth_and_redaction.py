"""API keys and scopes (pure parts), and the log redaction that keeps secrets out of log lines."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
import structlog
from pipeline_runtime.auth import AuthError, Principal, authenticate, hash_key, new_api_key, parse_scopes
from pipeline_runtime.logconfig import LogSettings, configure_logging, redact_text


def lookup_for(keys: dict[str, Principal]):
    async def lookup(key: str) -> Principal | None:
        return keys.get(key)

    return lookup


READER = Principal(uuid.uuid4(), "acme", frozenset({"read"}))


def test_keys_are_random_prefixed_and_long():
    a, b = new_api_key(), new_api_key()
    assert a != b
    assert a.startswith("imgp_")
    assert len(a) >= 40


def test_only_the_hash_identifies_a_key():
    key = new_api_key()
    assert hash_key(key) == hash_key(key) != hash_key(new_api_key())
    assert key.encode() not in hash_key(key)


async def test_a_missing_key_is_401():
    with pytest.raises(AuthError) as caught:
        await authenticate(None, lookup_for({}), "read")
    assert caught.value.status == 401


async def test_an_unknown_key_is_401():
    with pytest.raises(AuthError) as caught:
        await authenticate("Bearer imgp_nope", lookup_for({}), "read")
    assert caught.value.status == 401


async def test_a_key_without_the_scope_is_403():
    with pytest.raises(AuthError) as caught:
        await authenticate("Bearer k", lookup_for({"k": READER}), "upload")
    assert caught.value.status == 403


async def test_a_key_with_the_scope_is_the_caller():
    assert await authenticate("Bearer k", lookup_for({"k": READER}), "read") == READER


def test_scopes_are_checked_against_the_known_set():
    assert parse_scopes("upload, read") == ["read", "upload"]
    with pytest.raises(ValueError, match="unknown"):
        parse_scopes("upload,root")


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key imgp_AbCdEfGhIjKlMnOpQrStUvWx0123456789 used", "imgp_AbCdEfGhIjKlMnOpQrStUvWx0123456789"),
        ("secret whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=", "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="),
        ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
        ("fetching https://user:hunter2@img.example/x.jpg", "hunter2"),
    ],
)
def test_secrets_are_redacted_from_text(text, secret):
    assert secret not in redact_text(text)
    assert "[REDACTED]" in redact_text(text)


def test_a_log_line_never_carries_a_key_even_nested_or_in_an_exception(capsys):
    configure_logging(LogSettings(format="json", level="INFO"), "test", cache=False)
    key = new_api_key()
    log = structlog.get_logger("t")
    log.info("auth.checked", header=f"Bearer {key}", nested={"keys": [key]})
    try:
        raise RuntimeError(f"bad key {key}")
    except RuntimeError:
        log.exception("auth.crashed")
    logging.getLogger("uvicorn").warning("stdlib line with %s", key)
    out = capsys.readouterr().out
    assert key not in out
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(lines) == 3


def test_our_lines_and_stdlib_lines_come_out_alike_one_json_object_each(capsys):
    configure_logging(LogSettings(format="json", level="INFO"), "test", cache=False)
    structlog.get_logger("ours").info("image.compressed", output_bytes=12)
    structlog.get_logger("ours").debug("below.the.level")
    logging.getLogger("aiokafka").warning("theirs %s", "too")
    ours, theirs = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert ours["event"] == "image.compressed"
    assert ours["output_bytes"] == 12
    assert theirs["event"] == "theirs too"
    for line in (ours, theirs):
        assert line["service"] == "test"
        assert line["level"] in {"info", "warning"}
        assert "timestamp" in line


def test_a_closed_output_loses_the_line_but_never_fails_the_caller(monkeypatch):
    closed = io.StringIO()
    monkeypatch.setattr("sys.stdout", closed)
    configure_logging(LogSettings(format="json", level="INFO"), "test", cache=False)
    closed.close()
    structlog.get_logger("ours").error("still.working")  # must not raise
    logging.getLogger("uvicorn").error("nor this")


@pytest.mark.parametrize("text", ["BEARER abc.def", "bEaReR abc.def", "ftp://u:p@host/x"])
def test_the_quick_check_lets_every_spelling_through_to_the_patterns(text):
    assert "[REDACTED]" in redact_text(text)


def test_text_without_a_secret_marker_is_returned_unchanged():
    text = "image 1b4e28ba-2fa1-11d2-883f-0016d3cca427 of request 42 at imgp"
    assert redact_text(text) is text

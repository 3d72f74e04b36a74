"""structlog set-up: JSON lines in production, readable console output in development."""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from typing import Literal, TextIO

import structlog
from pydantic_settings import BaseSettings, SettingsConfigDict
from structlog.types import EventDict


def _identity(_: object, __: str, event_dict: EventDict) -> EventDict:
    return event_dict


class LogSettings(BaseSettings):
    """Logging settings, shared names for every service (LOG_*)."""

    model_config = SettingsConfigDict(env_prefix="LOG_", extra="ignore")

    format: Literal["json", "console"] = "json"
    level: str = "INFO"


_SECRET_PATTERNS = [
    (re.compile(r"imgp_[A-Za-z0-9_-]{16,}"), "imgp_[REDACTED]"),
    (re.compile(r"whsec_[A-Za-z0-9+/=]{16,}"), "whsec_[REDACTED]"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"',]+"), r"\1[REDACTED]"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/@\s\"']+@"), r"\1[REDACTED]@"),
]


# Every text a secret pattern matches holds one of these: one search spares the four
# substitutions for the ids, names and numbers that make up most log values (a log line cost
# about 20 us more with them, every image's line included).
_MAYBE_SECRET = re.compile(r"imgp_|whsec_|bearer|://", re.IGNORECASE)


def redact_text(text: str) -> str:
    """API keys, webhook secrets, bearer tokens and URL credentials replaced by [REDACTED]."""
    if _MAYBE_SECRET.search(text) is None:
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact(value: object) -> object:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact_secrets(_: object, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: a last line of defence so no secret reaches a log line."""
    return {key: _redact(value) for key, value in event_dict.items()}


class _LineWriter:
    """structlog's output: a rendered event as one line on the stream, flushed at once.

    Like stdlib's handlers, it never raises: a closed or broken stream loses the line, not the
    work that logged it.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(message + "\n")
            self._stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def configure_logging(settings: LogSettings, service: str, *, cache: bool = True) -> None:
    """Configure structlog, and render stdlib logging (uvicorn, aiokafka, faust) the same way."""
    level = logging.getLevelName(settings.level.upper())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info if settings.format == "console" else _identity,
        redact_secrets,
    ]
    renderer: structlog.types.Processor
    if settings.format == "json":
        # Tracebacks as data, without frame locals (they could hold a key or a secret).
        no_locals = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        shared.insert(-1, structlog.processors.ExceptionRenderer(no_locals))
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer()
    # Our own events are rendered and written by structlog itself; going through stdlib logging
    # (a LogRecord, the handler, the formatter) cost about as much again per line.
    structlog.configure(
        processors=[*shared, renderer],
        logger_factory=lambda *_: _LineWriter(sys.stdout),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=cache,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)

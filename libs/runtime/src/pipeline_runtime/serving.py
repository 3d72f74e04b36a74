"""Running an HTTP service: uvicorn with the read timeouts that keep slow clients from holding it.

uvicorn (h11) arms no timer while a request's headers or body arrive: only the idle time between
requests is bounded (--timeout-keep-alive). A client sending its headers a byte a second, or an
upload a byte a second, held a connection (and for uploads a task and a spooled file) for as
long as it liked. `GuardedH11Protocol` adds both deadlines at the protocol level, for every route
and before any application code runs:

- header timeout: from the connection's first moment (and from the end of each answer on a
  kept-alive connection) until the request line and headers are complete; beyond it the
  connection is closed without an answer (there is no request to answer yet).
- body timeout: from the end of the headers until the body is complete; beyond it the client gets
  408 problem+json with `Connection: close` (unless an answer has started) and is disconnected.

Every HTTP service's __main__ calls `serve(app, host=..., port=..., settings=settings.http)`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
import structlog
import uvicorn
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from uvicorn.protocols.http.h11_impl import H11Protocol

log = structlog.get_logger(__name__)


class ServingSettings(BaseSettings):
    """How long an HTTP client may take (HTTP_*; shared by every HTTP service)."""

    model_config = SettingsConfigDict(env_prefix="HTTP_", extra="ignore")

    header_timeout_seconds: float = Field(
        10.0, gt=0, description="Time a client has to send a request's line and headers; then it is cut off."
    )
    body_timeout_seconds: float = Field(
        300.0,
        gt=0,
        description="Time a client has to send a whole request body (a 50 MB upload at 1.4 Mbit/s); "
        "then it gets 408 and is cut off.",
    )
    keep_alive_seconds: int = Field(
        5, ge=1, description="Idle time before a kept-alive connection is closed."
    )


def timeout_answer() -> bytes:
    """The raw 408 written when a body is too slow; the application never saw a finished request."""
    body = json.dumps(
        {
            "type": "https://imgpipe.dev/problems/body-timeout",
            "title": "Request body too slow",
            "status": 408,
            "detail": "the request body did not arrive in time; send it faster or in smaller parts",
        }
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for the headers and one for the body of each request."""

    header_timeout: float = 10.0
    body_timeout: float = 300.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: str | None = None  # "headers" or "body"

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows it
        super().connection_made(transport)
        self._arm("headers", self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        self._follow_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_request()

    def _follow_request(self) -> None:
        """Move the deadline along with h11's view of the client: headers, then body, then nothing."""
        state = self.conn.their_state
        if state is h11.IDLE and self.conn.our_state is h11.IDLE:
            if self._waiting_for != "headers" and not self.transport.is_closing():
                self._arm("headers", self.header_timeout)
        elif state is h11.SEND_BODY:
            if self._waiting_for != "body":
                self._arm("body", self.body_timeout)
        else:
            self._disarm()

    def _arm(self, what: str, seconds: float) -> None:
        self._disarm()
        self._waiting_for = what
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._waiting_for = None

    def _expired(self) -> None:
        what, self._deadline, self._waiting_for = self._waiting_for, None, None
        if self.transport.is_closing():
            return
        log.warning("http.client_too_slow", waiting_for=what, client=self.client and self.client[0])
        if what == "body" and self.cycle is not None and not self.cycle.response_started:
            self.transport.write(timeout_answer())
            self.cycle.response_complete = True  # nothing more may be written for this request
        if self.cycle is not None:
            self.cycle.disconnected = True  # the application's receive() now answers http.disconnect
            self.cycle.message_event.set()
        self.transport.close()


def guarded_protocol(settings: ServingSettings) -> type[GuardedH11Protocol]:
    """The protocol class with these deadlines (uvicorn builds one instance per connection)."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout": settings.header_timeout_seconds, "body_timeout": settings.body_timeout_seconds},
    )


def server_config(app: Any, *, host: str, port: int, settings: ServingSettings) -> uvicorn.Config:
    """uvicorn's configuration for a service: our protocol and timeouts, our logging (not uvicorn's)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(settings),
        timeout_keep_alive=settings.keep_alive_seconds,
        log_config=None,
        access_log=False,
    )


def serve(app: Any, *, host: str, port: int, settings: ServingSettings) -> None:
    """Run the app until SIGINT/SIGTERM (blocking), with the slow-client deadlines."""
    uvicorn.Server(server_config(app, host=host, port=port, settings=settings)).run()

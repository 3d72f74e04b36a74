"""Limits enforced before the multipart parser reads anything: key, uploads in progress, rate, body size."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable

import structlog
from pipeline_runtime.auth import AuthError, authenticate
from pipeline_runtime.httpkit import auth_problem, problem, unavailable_problem
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)

# Room for the multipart envelope and the small form fields around the file itself.
MULTIPART_OVERHEAD = 64 * 1024
# A refused upload's body is read and dropped up to this size, so that the connection can stay
# open: closing it with unread bytes makes the kernel send a reset, which can destroy the answer
# before the client reads it. Beyond this, the connection is closed.
DRAIN_BYTES = 1024 * 1024
RETRY_SOON = {"retry-after": "5"}


class BodyTooLarge(HTTPException):
    """Raised from `receive`; FastAPI re-raises HTTPExceptions met while parsing the body."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the upload is larger than {limit} bytes")


class BodySizeLimit:
    """Answer 413 problem+json when a body exceeds the limit, by Content-Length or while streaming.

    Without it an oversized upload would be parsed and written to a temporary file in full
    before the route could look at its size.
    """

    def __init__(self, app: ASGIApp, *, max_file_bytes: int) -> None:
        self.app = app
        self.max_file_bytes = max_file_bytes
        self.max_body_bytes = max_file_bytes + MULTIPART_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = content_length(scope)
        if length is not None and length > self.max_body_bytes:
            await self.refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise BodyTooLarge(self.max_file_bytes)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:
            if started:
                raise
            await self.refuse(scope, receive, send)

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the upload is larger than {self.max_file_bytes} bytes"
        response = problem(413, "too-large", "Upload too large", detail)
        response.headers["connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)


def content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class TokenBuckets:
    """One token bucket per key, kept in this process's memory.

    Each of N ingest processes keeps its own buckets, so together they allow up to N times the
    rate. A key starts with `burst` tokens and regains `rate_per_minute` a minute.
    """

    def __init__(
        self, rate_per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}

    def take(self, key: Hashable) -> float:
        """0 when a token was taken; otherwise the seconds until the next one (nothing is taken)."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate


class UploadsInProgress:
    """How many uploads each key has in progress in this process, up to `per_key` at once.

    Uploads are the expensive requests (a 50 MB body spooled to disk, then parsed): without this a
    key within its rate could still hold many slow uploads open together.
    """

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self._counts: dict[Hashable, int] = {}

    def enter(self, key: Hashable) -> bool:
        """Count one more upload of `key`; False (nothing counted) when it already has `per_key`."""
        count = self._counts.get(key, 0)
        if count >= self.per_key:
            return False
        self._counts[key] = count + 1
        return True

    def leave(self, key: Hashable) -> None:
        count = self._counts.pop(key, 0) - 1
        if count > 0:
            self._counts[key] = count


class UploadGate:
    """POST /upload answers 401, 403 or 429 before its body is parsed.

    Without it FastAPI would parse the multipart body (spooling the file to disk) before any
    dependency ran, so strangers, callers over their rate and callers with too many uploads in
    progress would still make ingest receive whole files. A refused body is dropped unparsed (see
    DRAIN_BYTES). The route checks the key again (its dependency); that lookup is one indexed query.
    """

    def __init__(self, app: ASGIApp, *, path: str, unavailable: tuple[type[BaseException], ...]) -> None:
        self.app = app
        self.path = path
        self.unavailable = unavailable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        admitted = await self.admit(request)
        if not isinstance(admitted, Response):
            in_progress: UploadsInProgress = request.app.state.uploads_in_progress
            try:
                await self.app(scope, receive, send)
            finally:
                in_progress.leave(admitted)
            return
        # A client waiting for "100 Continue" never sends the body: nothing to read or reset.
        waiting = request.headers.get("expect", "").lower() == "100-continue"
        if waiting or not await drain(receive, DRAIN_BYTES):
            admitted.headers["connection"] = "close"
        await admitted(scope, receive, send)

    async def admit(self, request: Request) -> Hashable | Response:
        """The caller's key id, counted as in progress; or the refusal to answer."""
        state = request.app.state
        try:
            caller = await authenticate(request.headers.get("authorization"), state.key_store.find, "upload")
        except AuthError as exc:
            return auth_problem(exc)
        except self.unavailable as exc:
            return unavailable_problem(exc)
        in_progress: UploadsInProgress = state.uploads_in_progress
        if not in_progress.enter(caller.key_id):
            detail = (
                f"this API key has {in_progress.per_key} uploads in progress (at most {in_progress.per_key})"
            )
            return problem(
                429, "too-many-uploads", "Too many uploads in progress", detail, headers=RETRY_SOON
            )
        wait = state.upload_limiter.take(caller.key_id)
        if not wait:
            return caller.key_id
        in_progress.leave(caller.key_id)
        seconds = max(1, math.ceil(wait))
        detail = f"this API key may upload again in {seconds} s (rate limit per key)"
        return problem(429, "rate-limited", "Too many uploads", detail, headers={"retry-after": str(seconds)})


async def drain(receive: Receive, limit: int) -> bool:
    """Read and drop the request body up to `limit` bytes; True when all of it was read."""
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return False
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
        if received > limit:
            return False

"""An independent Standard Webhooks verifier, written from the specification (not the notifier's code)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


def verify_standard_webhook(
    secret: str, headers: dict[str, str], body: bytes, *, tolerance: int = 300
) -> bool:
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, timestamp = lower["webhook-id"], lower["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    )
    for candidate in lower["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return True
    return False

"""The one rule for URLs that clients hand to a service (webhook targets, subscription URLs).

Image URLs inside an uploaded CSV follow the same limits (ingest's csv_validation uses
MAX_URL_LENGTH and MAX_HOST_LABEL) with a faster path for the hundreds of thousands of them.
Whether the host may be *reached* is a different question, answered when connecting (netguard).
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048  # what browsers and most servers accept; longer is not a real image or hook
MAX_HOST_LABEL = 63  # RFC 1035: one dot-separated label of a host name
WEB_SCHEMES = frozenset({"http", "https"})


def web_url_problem(value: str) -> str | None:
    """What is wrong with an absolute http(s) URL given by a client, or None when it is acceptable.

    The answer never quotes the URL: it may hold credentials.
    """
    if len(value) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - evaluated only to validate the port
    except ValueError:
        return "must be an absolute http or https URL with a valid host and port"
    if parts.scheme.lower() not in WEB_SCHEMES or not host:
        return "must be an absolute http or https URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials (user:password@)"
    if host_label_too_long(host):
        return f"has a host name label longer than {MAX_HOST_LABEL} characters"
    return None


def host_label_too_long(host: str) -> bool:
    """True when a label of a host name is beyond DNS's limit (IPv6 literals have no labels)."""
    return ":" not in host and any(len(label) > MAX_HOST_LABEL for label in host.split("."))

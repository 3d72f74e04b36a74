"""Checking one image URL of an uploaded CSV: a fast path for the common case, reasons for the rest.

The limits are pipeline_runtime.urls' (the rule for every URL a client hands us); messages never
quote credentials.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pipeline_runtime.urls import MAX_HOST_LABEL, MAX_URL_LENGTH, WEB_SCHEMES, host_label_too_long

_QUOTED_LIMIT = 80


def is_plain_web_url(url: str) -> bool:
    """Fast path for the common case; False only means describe_url_problem must decide."""
    if url.startswith("https://"):
        host = url[8:].partition("/")[0]
    elif url.startswith("http://"):
        host = url[7:].partition("/")[0]
    else:
        return False
    name, colon, port = host.partition(":")
    if colon and not is_plain_port(port):
        return False
    return (
        len(url) <= MAX_URL_LENGTH
        and name.replace(".", "").replace("-", "").isalnum()
        and " " not in url
        and url.isprintable()
        and (len(name) <= MAX_HOST_LABEL or not host_label_too_long(name))
    )


def is_plain_port(port: str) -> bool:
    return port.isascii() and port.isdigit() and len(port) <= 5 and int(port) <= 65535


def describe_url_problem(url: str) -> str | None:
    """Say what is wrong with an image URL (without quoting it), or None if it is acceptable."""
    if len(url) > MAX_URL_LENGTH:
        return f"URL is longer than {MAX_URL_LENGTH} characters"
    if " " in url or not url.isprintable():
        return "URL must not contain whitespace or control characters"
    scheme, separator, rest = url.partition("://")
    if not separator or not scheme:
        return "URL must be absolute (start with http:// or https://)"
    if scheme.lower() not in WEB_SCHEMES:
        return "URL must use http or https"
    return describe_authority_problem(url, authority_of(rest))


def authority_of(after_scheme: str) -> str:
    """The host[:port] part: everything before the first '/', '?' or '#'."""
    end = len(after_scheme)
    for separator in "/?#":
        found = after_scheme.find(separator, 0, end)
        if found != -1:
            end = found
    return after_scheme[:end]


def describe_authority_problem(url: str, authority: str) -> str | None:
    """Reject credentials, a missing host, an over-long label or a bad port; urlsplit checks the rare cases."""
    if "@" in authority:
        return "URL must not contain credentials"
    if not authority or authority.startswith(":"):
        return "URL has no host"
    if "[" not in authority and host_label_too_long(authority.partition(":")[0]):
        return f"URL has a host name label longer than {MAX_HOST_LABEL} characters"
    if ":" not in authority and "[" not in authority and "]" not in authority:
        return None
    try:
        parts = urlsplit(url)
        has_host = bool(parts.hostname)
        parts.port  # noqa: B018 - evaluated only to validate the port
    except ValueError:
        return "URL has an invalid host or port"
    if not has_host:
        return "URL has no host"
    return None


def quote_url_for_message(url: str) -> str:
    """Quote a URL for an error message, with any user:password@ part masked."""
    return quote_for_message(mask_credentials(url))


def mask_credentials(url: str) -> str:
    """Replace everything before the last '@' with '***' so no credential can leak."""
    at = url.rfind("@")
    if at == -1:
        return url
    scheme, separator, _ = url.partition("://")
    prefix = scheme + separator if scheme.lower() in WEB_SCHEMES else ""
    return f"{prefix}***{url[at:]}"


def quote_for_message(text: str) -> str:
    if len(text) > _QUOTED_LIMIT:
        text = text[:_QUOTED_LIMIT] + "..."
    return f"'{text}'"

"""Secrets out of text: URLs are shown with their token parameters masked, in every message and log."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_PARAMS = {"access_token", "token"}


def redact(url: str) -> str:
    """The URL with secret query parameters (access_token, token) masked, for messages and logs."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = [(k, "***" if k in SECRET_PARAMS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(pairs, safe=":/*")))

"""HTTP error statuses as asyncdl errors (429 aside: :meth:`Client.stream` waits those out)."""

from __future__ import annotations

import json

from asyncdl.errors import (
    AccessDeniedError,
    AuthenticationError,
    BlockedError,
    GoneError,
    NotFoundError,
    RemoteError,
    ServerError,
)
from asyncdl.http.response import is_html

BY_STATUS: dict[int, type[RemoteError]] = {401: AuthenticationError, 403: AccessDeniedError, 404: NotFoundError,
                                           410: GoneError}


def server_message(body: bytes) -> str:
    """The server's own message, if its body is JSON with one."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            messages = errors[0].get("messages") or []
            return "; ".join(str(m) for m in messages) or str(data.get("message", ""))
        return str(data.get("message", ""))
    return ""


def error_for(status: int, *, url: str, content_type: str, body: bytes) -> RemoteError:
    """The asyncdl error for an HTTP error status (returned, not raised). A 403 with an HTML page is the
    "unusual traffic" block, any other 403 a restricted record."""
    kind = BY_STATUS.get(status, ServerError if status >= 500 else RemoteError)
    if status == 403 and is_html(content_type, body):
        kind = BlockedError
    return kind.from_status(status, url=url, detail=server_message(body))

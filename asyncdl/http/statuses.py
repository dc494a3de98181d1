"""HTTP error statuses as asyncdl errors (429 aside: :meth:`Client.stream` waits those out)."""

from __future__ import annotations

import json
import re

from asyncdl.errors import (
    AccessDeniedError,
    AuthenticationError,
    BlockedError,
    GoneError,
    NotFoundError,
    RemoteError,
    ServerError,
    SignedLinkError,
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


def s3_message(body: bytes) -> str:
    """An object store's own words: ``<Error><Code>..</Code><Message>..</Message></Error>``."""
    found = re.search(rb"<Message>([^<]{1,300})</Message>", body)
    return found[1].decode("utf-8", "replace") if found else ""


def error_for(status: int, *, url: str, content_type: str, body: bytes, redirected: bool = False) -> RemoteError:
    """The asyncdl error for an HTTP error status (returned, not raised). A 403 with an HTML page is the
    "unusual traffic" block, any other 403 a restricted record; a 400 or 403 from the host a redirect led
    to (``redirected``) is a presigned URL refused."""
    if redirected and status in (400, 403):
        return SignedLinkError.from_status(status, url=url.split("?", 1)[0],
                                           detail=s3_message(body) or server_message(body))
    kind = BY_STATUS.get(status, ServerError if status >= 500 else RemoteError)
    if status == 403 and is_html(content_type, body):
        kind = BlockedError
    return kind.from_status(status, url=url, detail=server_message(body))

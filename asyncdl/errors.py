"""The asyncdl error hierarchy, each class carrying what the rest of the program needs to know of it.

Every error the library raises is an :class:`AsyncdlError`. Its class attributes are the one table of
what an error means:

- ``retryable``: trying the same request again later can succeed;
- ``fatal``: the whole run stops (else only the file or record fails);
- ``fault``: the kind it is counted as among the faults met when it is retried (a key of FAULT_LABELS);
- ``exit_code``: the command's exit code when it ends a command;
- ``reason_text``: the short reason shown for a file that failed with it;
- ``status_text``: (remote errors) the message made from an HTTP status, see :meth:`RemoteError.from_status`.

    AsyncdlError
    ├── UsageError              bad selection, option or argument (exit 2)
    │   └── ConfigError         bad configuration file or value
    ├── RemoteError             the server answered, but not with what we need
    │   ├── AuthenticationError 401: the token was refused (fatal)
    │   ├── AccessDeniedError   403 JSON: restricted or embargoed
    │   ├── BlockedError        403 HTML "unusual traffic" page (retryable, slowly)
    │   ├── NotFoundError       404
    │   ├── GoneError           410: the record was deleted
    │   ├── RateLimitedError    429, still, after max_rate_limit_waits waits
    │   ├── ServerError         5xx (retryable)
    │   ├── SignedLinkError     400/403 from the host a download was redirected to: a presigned URL that
    │   │                       expired (retryable: the record's URL is asked again for a fresh one)
    │   └── BadResponseError    HTML or malformed JSON where JSON was expected
    ├── TransportError          connection reset, refused or ended early (retryable)
    │   ├── StalledError        no byte within the read timeout (retryable)
    │   └── ShortBodyError      a body that ended cleanly before the file's size (retryable)
    ├── IntegrityError          size or md5 of a download does not match the record (retryable from zero)
    ├── RequestCeilingError     a file cost the most requests it may (reported as failed)
    ├── ShortCrawlError         the server's pages gave fewer records than it stated (what was found is kept)
    ├── NoProgressError         many requests brought nothing: the run stops (fatal)
    ├── FormatError             a sidecar of a newer version (the file fails; nothing is guessed)
    ├── UnsafePathError         a file key or layout would leave the destination
    └── LocalError              local state problems (exit 3, fatal)
        ├── DiskFullError       no space left
        ├── JournalError        the journal is unreadable or unwritable
        └── LockedError         another run holds the destination
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_EMPTY = 4  # the selection matched no records, or its filters left no file
EXIT_INACCESSIBLE = 5  # everything that could be had was had; the rest is restricted, embargoed or not completed


class AsyncdlError(Exception):
    """Base class of every asyncdl error."""

    retryable: ClassVar[bool] = False
    fatal: ClassVar[bool] = False
    fault: ClassVar[str] = ""
    exit_code: ClassVar[int] = EXIT_FAILED
    reason_text: ClassVar[str] = "{message}"

    def reason(self, *, access: str = "restricted") -> str:
        """The short reason shown for a file that failed with this error (``access``: the record's access,
        for a 403)."""
        return self.reason_text.format(message=str(self), url=getattr(self, "url", ""), access=access)


class UsageError(AsyncdlError):
    """The user asked for something that cannot be done as asked."""

    fatal = True
    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A configuration file or value is invalid."""


class RemoteError(AsyncdlError):
    """The server answered with something other than what was needed."""

    status_text: ClassVar[str] = "HTTP {status} at {url}{detail}"

    def __init__(self, message: str, *, url: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status

    @classmethod
    def from_status(cls, status: int, *, url: str, detail: str = "") -> RemoteError:
        """The error for an answer with ``status`` at ``url`` (``detail``: the server's own message)."""
        said = f": {detail}" if detail else ""
        return cls(cls.status_text.format(status=status, url=url, detail=said), url=url, status=status)


class AuthenticationError(RemoteError):
    """The server refused the token (401)."""

    fatal = True
    status_text = "the server refused the token (401) for {url}{detail}"


class AccessDeniedError(RemoteError):
    """403 with a JSON body: the record or its files are restricted or embargoed."""

    status_text = "access denied (403: restricted or embargoed) at {url}{detail}"
    reason_text = "{access} (403)"


class BlockedError(RemoteError):
    """403 with an HTML page: the server blocked this client for unusual traffic."""

    retryable = True
    fault = "blocked"
    status_text = "blocked by the server (403 HTML page, 'unusual traffic') at {url}"
    reason_text = "blocked by the server (403 HTML page) at {url}"


class NotFoundError(RemoteError):
    """404: no such record or file."""

    status_text = "not found (404) at {url}{detail}"
    reason_text = "not found (404)"


class GoneError(RemoteError):
    """410: the record was deleted (tombstone)."""

    status_text = "deleted (410) at {url}{detail}"
    reason_text = "deleted (410)"


class RateLimitedError(RemoteError):
    """429. :meth:`Client.stream` waits each out (counted as a fault met); raised only after
    ``max_rate_limit_waits`` waits in a row, and then not retried further."""

    fault = "429"
    status_text = "rate limited (429) at {url}"

    def __init__(self, message: str, *, url: str = "", status: int | None = 429) -> None:
        super().__init__(message, url=url, status=status)


class ServerError(RemoteError):
    """5xx: the server failed; usually transient."""

    retryable = True
    fault = "5xx"
    status_text = "server error {status} at {url}"


class SignedLinkError(RemoteError):
    """A download redirected to another host (a presigned object-store URL) was refused there: the signature
    expired (403 "Request has expired") or was not accepted. Asking the record's own URL again gives a
    fresh signature, so it is retried."""

    retryable = True
    fault = "signed"
    status_text = "the signed download address was refused (HTTP {status}) at {url}{detail}"


class BadResponseError(RemoteError):
    """HTML, truncated or malformed JSON where a JSON document was expected."""


class TransportError(AsyncdlError):
    """The connection failed: refused, reset or ended early."""

    retryable = True
    fault = "connection"


class ConnectError(TransportError):
    """No connection could be made: refused, unreachable, or the host name not known. Retried on a budget of
    its own, shorter than that of a connection lost mid-body (see asyncdl.http.retry)."""

    fault = "connect"


class StalledError(TransportError):
    """No byte arrived within the read timeout (or the connection could not be made in time)."""

    fault = "timeout"


class ShortBodyError(TransportError):
    """A body that ended cleanly (no error) before the file's size: retried, but only progress resets the budget."""

    fault = "short"

    def __init__(self, message: str, *, position: int, size: int) -> None:
        super().__init__(message)
        self.position = position
        self.size = size


class IntegrityError(AsyncdlError):
    """A downloaded file does not match the size or md5 the record gives."""

    retryable = True
    fault = "corrupt"
    reason_text = "corrupt: {message}"


class RequestCeilingError(AsyncdlError):
    """One file cost the most requests it may (its ceiling, from its size, segments and retries)."""


class ShortCrawlError(AsyncdlError):
    """A listing fell short of the total the server stated; ``records`` holds every record it did give."""

    def __init__(self, message: str, *, records: list[Any]) -> None:
        super().__init__(message)
        self.records = records


class NoProgressError(AsyncdlError):
    """Many requests in a row, for a while, brought no new bytes, no finished file and no record: the run
    stops rather than keep asking (the server is failing, or answers in a way asyncdl cannot use)."""

    fatal = True


class FormatError(AsyncdlError):
    """A file asyncdl keeps beside a download (a segment sidecar) is of a version this release does not know."""


class UnsafePathError(AsyncdlError):
    """A file key or layout would place a file outside the destination folder."""


class LocalError(AsyncdlError):
    """A problem with local state: disk, journal or lock. Nothing is lost: fix it and run again."""

    fatal = True
    exit_code = EXIT_LOCAL


class DiskFullError(LocalError):
    """The destination file system is full."""


class JournalError(LocalError):
    """The journal cannot be read or written."""


class LockedError(LocalError):
    """Another asyncdl run holds the destination folder."""


FAULT_LABELS = {"connection": "connections lost", "connect": "connections not made", "short": "bodies ended early",
                "timeout": "stalls (read timeout)", "5xx": "server errors (5xx)", "429": "rate limited (429)",
                "blocked": "blocked (403 page)",
                "signed": "signed links refused or expired", "corrupt": "corrupt downloads (size or md5)"}


def fault_kind(error: BaseException) -> str:
    """The kind of fault a retried error was, for the run's count of faults met (keys of FAULT_LABELS)."""
    return (error.fault if isinstance(error, AsyncdlError) else "") or type(error).__name__


def describe_faults(faults: Mapping[str, int], *, leave_out: tuple[str, ...] = ()) -> str:
    """``"12 connections lost, 3 server errors (5xx)"``, or ``"none"`` (``leave_out``: kinds shown elsewhere)."""
    parts = [f"{count} {FAULT_LABELS.get(kind, kind)}" for kind, count in sorted(faults.items())
             if count and kind not in leave_out]
    return ", ".join(parts) or "none"


def translate_os_error(exc: OSError, path: Path) -> Exception:
    """ENOSPC and EDQUOT become DiskFullError (fatal); anything else is returned unchanged."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"no space left on the device holding {path.parent}: free some and run again "
                             "(partial files are kept and will resume)")
    return exc


def unwrap(error: BaseException) -> BaseException:
    """The one error to report from a (possibly nested) exception group: a fatal asyncdl error first,
    then any asyncdl error, then whatever came first."""
    if not isinstance(error, BaseExceptionGroup):
        return error
    leaves: list[BaseException] = []

    def collect(group: BaseExceptionGroup[BaseException]) -> None:
        for inner in group.exceptions:
            if isinstance(inner, BaseExceptionGroup):
                collect(inner)
            else:
                leaves.append(inner)

    collect(error)
    ours = [e for e in leaves if isinstance(e, AsyncdlError)]
    fatal = [e for e in ours if e.fatal]
    return (fatal or ours or leaves or [error])[0]

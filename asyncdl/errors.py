"""The asyncdl error hierarchy.

Every error the library raises is an :class:`AsyncdlError`. ``retryable`` says whether
trying the same request again later can succeed; ``fatal`` errors stop the whole run.

    AsyncdlError
    ├── UsageError              bad selection, option or argument (not retryable)
    │   └── ConfigError         bad configuration file or value
    ├── RemoteError             the server answered, but not with what we need
    │   ├── AuthenticationError 401: the token was refused (fatal)
    │   ├── AccessDeniedError   403 JSON: restricted or embargoed
    │   ├── BlockedError        403 HTML "unusual traffic" page (retryable, slowly)
    │   ├── NotFoundError       404
    │   ├── GoneError           410: the record was deleted
    │   ├── RateLimitedError    429 (retryable, after Retry-After)
    │   ├── ServerError         5xx (retryable)
    │   └── BadResponseError    HTML or malformed JSON where JSON was expected
    ├── TransportError          connection reset, refused, timed out (retryable)
    │   └── ShortBodyError      a body that ended cleanly before the file's size (retryable)
    ├── RequestCeilingError     a file cost the most requests it may (reported as failed)
    ├── NoProgressError         many requests brought nothing: the run stops (fatal)
    ├── IntegrityError          size or md5 of a download does not match the record (retryable from zero)
    ├── UnsafePathError         a file key or layout would leave the destination
    └── LocalError              local state problems
        ├── DiskFullError       no space left (fatal)
        ├── JournalError        the journal is unreadable (fatal)
        └── LockedError         another run holds the destination (fatal)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class AsyncdlError(Exception):
    """Base class of every asyncdl error."""

    retryable: ClassVar[bool] = False
    fatal: ClassVar[bool] = False


class UsageError(AsyncdlError):
    """The user asked for something that cannot be done as asked."""

    fatal = True


class ConfigError(UsageError):
    """A configuration file or value is invalid."""


class RemoteError(AsyncdlError):
    """The server answered with something other than what was needed."""

    def __init__(self, message: str, *, url: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class AuthenticationError(RemoteError):
    """The server refused the token (401)."""

    fatal = True


class AccessDeniedError(RemoteError):
    """403 with a JSON body: the record or its files are restricted or embargoed."""


class BlockedError(RemoteError):
    """403 with an HTML page: the server blocked this client for unusual traffic."""

    retryable = True


class NotFoundError(RemoteError):
    """404: no such record or file."""


class GoneError(RemoteError):
    """410: the record was deleted (tombstone)."""


class RateLimitedError(RemoteError):
    """429 again and again: a request still refused after ``max_rate_limit_waits`` waits."""

    retryable = True

    def __init__(self, message: str, *, url: str = "", status: int | None = 429) -> None:
        super().__init__(message, url=url, status=status)


class ServerError(RemoteError):
    """5xx: the server failed; usually transient."""

    retryable = True


class BadResponseError(RemoteError):
    """HTML, truncated or malformed JSON where a JSON document was expected."""


class TransportError(AsyncdlError):
    """The connection failed: refused, reset, timed out (``timed_out``) or ended early."""

    retryable = True

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class ShortBodyError(TransportError):
    """A body that ended cleanly (no error) before the file's size: retried, but only progress resets the budget."""

    def __init__(self, message: str, *, position: int, size: int) -> None:
        super().__init__(message)
        self.position = position
        self.size = size


class RequestCeilingError(AsyncdlError):
    """One file cost the most requests it may (its ceiling, from its size, segments and retries)."""


class NoProgressError(AsyncdlError):
    """Many requests in a row, for a while, brought no new bytes, no finished file and no record: the run
    stops rather than keep asking (the server is failing, or answers in a way asyncdl cannot use)."""

    fatal = True


class IntegrityError(AsyncdlError):
    """A downloaded file does not match the size or md5 the record gives."""

    retryable = True


class UnsafePathError(AsyncdlError):
    """A file key or layout would place a file outside the destination folder."""


class LocalError(AsyncdlError):
    """A problem with local state: disk, journal or lock."""

    fatal = True


class DiskFullError(LocalError):
    """The destination file system is full."""


class JournalError(LocalError):
    """The journal cannot be read or written."""


class LockedError(LocalError):
    """Another asyncdl run holds the destination folder."""


FAULT_LABELS = {"connection": "connections lost", "short": "bodies ended early",
                "timeout": "stalls (read timeout)", "5xx": "server errors (5xx)", "429": "rate limited (429)",
                "blocked": "blocked (403 page)", "corrupt": "corrupt downloads (size or md5)"}


def fault_kind(error: BaseException) -> str:
    """The kind of fault a retried error was, for the run's count of faults met (keys of FAULT_LABELS)."""
    if isinstance(error, ShortBodyError):
        return "short"
    if isinstance(error, TransportError):
        return "timeout" if error.timed_out else "connection"
    if isinstance(error, RateLimitedError):
        return "429"
    if isinstance(error, ServerError):
        return "5xx"
    if isinstance(error, BlockedError):
        return "blocked"
    if isinstance(error, IntegrityError):
        return "corrupt"
    return type(error).__name__


def describe_faults(faults: Mapping[str, int]) -> str:
    """``"12 connections lost, 3 server errors (5xx)"``, or ``"none"``."""
    parts = [f"{count} {FAULT_LABELS.get(kind, kind)}" for kind, count in sorted(faults.items()) if count]
    return ", ".join(parts) or "none"


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

"""One run at a time per destination (per shard): advisory locks in DEST/.asyncdl.

A whole run holds ``lock`` exclusively. A shard holds ``lock`` shared (shards run side by side, but not
beside a whole run) and its own ``lock-K-of-N`` exclusively (two processes of one shard never run at once).

The lock is an ``flock`` held for the run's lifetime: the kernel drops it when the process ends, however
it ends, so a lock left by a killed run is simply taken over. The file also names its holder (pid, host,
command, start) for the error message a second run prints.

Limits: ``flock`` is reliable on local file systems. On network file systems (NFS, SMB, Lustre) it may be
emulated or ignored, so two machines might both get it; do not run two asyncdl processes on one
destination from different machines: give each its own shard (one journal per shard) instead. Where the
file system refuses locks outright (Lustre without ``-o flock``), the run goes on unguarded
(``supported`` is False) and the caller warns.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from asyncdl.errors import LockedError

UNSUPPORTED = (errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP)  # no locks on this file system


class RunLock:
    """``with RunLock(state_dir, "mirror ...")``: raises LockedError while another run holds it
    (``shared``: while a run holds it exclusively; shared holders do not exclude each other)."""

    def __init__(self, state_dir: Path, command: str, name: str = "lock", *, shared: bool = False) -> None:
        self.path = state_dir / name
        self.command = command
        self.shared = shared
        self.supported = True  # False when the file system refused to lock at all
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._describe(fd)
            os.close(fd)
            raise LockedError(f"{self.path.parent.parent} is in use by another asyncdl run ({holder}); "
                              "wait for it to finish or stop it (Ctrl-C), then run again") from None
        except OSError as exc:
            if exc.errno not in UNSUPPORTED:
                os.close(fd)
                raise
            self.supported = False  # e.g. Lustre mounted without flock: run unguarded, and say so
        me = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            if self.supported:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def _describe(fd: int) -> str:
        try:
            data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except ValueError:
            return "unknown holder"
        return (f"pid {data.get('pid', '?')} on {data.get('host', '?')}, started {data.get('started', '?')}: "
                f"asyncdl {data.get('command', '?')}")


@contextmanager
def serialized(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``, waiting for it (shards finishing at once write the manifest
    one after the other, so the last one written has read every journal's last state)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in UNSUPPORTED:  # a file system without locks: written unserialized
                raise
        yield
    finally:
        os.close(fd)  # closing drops the lock


def held(path: Path) -> bool:
    """Whether a live process holds the run lock at ``path`` (read-only: the file is never made). A file
    system without locks cannot tell: True, so a run is never called dead on a guess."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # no lock file: no run ever held it here
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)

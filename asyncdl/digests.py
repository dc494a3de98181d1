"""Verifying a file against the checksum its record states, whatever the kind.

* ``md5:<hex>`` (Zenodo's, the default and the fast path), ``sha256:``, ``sha1:``, ``sha512:``,
  ``blake2b:``... : hashlib's algorithm of that name over the whole file.
* ``multipart:<etag>-<parts>-<part size>`` (InvenioRDM on S3, for a file uploaded in parts, until it is
  re-hashed): the S3 ETag, the md5 of the concatenated binary md5s of each ``part size`` bytes of the file
  (the last part shorter), and the number of parts. ``multipart:<etag>-<part size>`` (the etag without its
  ``-<parts>``) is accepted too: the etag is checked, the count is not.
* an algorithm hashlib does not know, a malformed value, or no checksum at all: only the size is checked,
  and the reason says why (see :attr:`Check.reason`).

A :class:`Check` is made once per file from its stated checksum; :meth:`Check.new` gives a running
:class:`Digest` to feed with the file's bytes in order.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Protocol

from asyncdl.models import Checksum

HASH_BLOCK = 4 * 1024 * 1024
_HEX = re.compile(r"^[0-9a-f]+$")
_MULTIPART = re.compile(r"^(?P<etag>[0-9a-f]{32})(?:-(?P<parts>\d+))?-(?P<part_size>\d+)$")
_BYTES_HASHES = {"shake_128", "shake_256"}  # need a length: not a checksum a record can state usefully


class Digest(Protocol):
    """A running checksum of a file's bytes, fed in order."""

    def update(self, data: bytes | memoryview) -> None: ...

    def problem(self) -> str | None: ...  # why the bytes fed are not the file's, or None when they match


class Check:
    """What can be verified of a file, from the checksum its record states."""

    def __init__(self, checksum: Checksum | None) -> None:
        self.checksum = checksum
        self._multipart: tuple[str, int | None, int] | None = None
        self.reason = self._read(checksum)

    def _read(self, checksum: Checksum | None) -> str | None:
        if checksum is None:
            return "no checksum"
        algorithm, value = checksum.algorithm, checksum.value
        if algorithm == "md5":
            return None  # Checksum.parse has checked it is 32 hex digits
        if algorithm == "multipart":
            found = _MULTIPART.match(value)
            parts = int(found["parts"]) if found and found["parts"] is not None else None
            if found is None or int(found["part_size"]) <= 0 or parts == 0:
                return (f"a malformed multipart checksum {value!r} (asyncdl reads "
                        "<etag hex>-<parts>-<part size>)")
            self._multipart = (found["etag"], parts, int(found["part_size"]))
            return None
        if algorithm not in hashlib.algorithms_available or algorithm in _BYTES_HASHES:
            return f"a {algorithm} checksum, which asyncdl cannot compute"
        if not _HEX.match(value) or len(value) != 2 * hashlib.new(algorithm).digest_size:
            return f"a malformed {algorithm} checksum {value!r}"
        return None

    @property
    def verifiable(self) -> bool:
        return self.reason is None

    @property
    def kind(self) -> str:
        """The checksum's algorithm ("md5", "sha256", "multipart"...), or "none"."""
        return self.checksum.algorithm if self.checksum is not None else "none"

    def describe(self) -> str:
        """What a match proves, for a file's reason: "md5 verified", "sha256 verified"..."""
        if self._multipart is not None:
            _, parts, size = self._multipart
            counted = "parts" if parts is None else f"{parts} part" + ("s" if parts != 1 else "")
            return f"multipart checksum verified ({counted} of {size} bytes)"
        return f"{self.kind} verified"

    def unverified(self, size: int | None) -> str:
        """What was checked of a file whose checksum cannot be verified."""
        if size is None:
            return f"not verified: the record gives no size and {self.reason}"
        return f"size checked only; the record gives {self.reason}"

    def new(self) -> Digest:
        """A fresh running digest; one that matches anything when nothing can be verified."""
        if self.checksum is None or self.reason is not None:
            return _Nothing()
        if self._multipart is not None:
            return MultipartDigest(*self._multipart)
        return HashDigest(self.checksum.algorithm, self.checksum.value)

    def of_file(self, path: Path) -> Digest:
        """A digest fed with the whole file at ``path`` (blocking)."""
        return feed(self.new(), path, None)


class HashDigest:
    """A hashlib algorithm against the hex digest the record states."""

    def __init__(self, algorithm: str, expected: str) -> None:
        self.algorithm, self.expected = algorithm, expected
        self._hash = hashlib.md5() if algorithm == "md5" else hashlib.new(algorithm)
        self.update = self._hash.update

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def problem(self) -> str | None:
        got = self._hash.hexdigest()
        return None if got == self.expected else f"{self.algorithm} {got} differs from the record's {self.expected}"


class MultipartDigest:
    """An S3 multipart ETag: md5 of each ``part_size`` bytes, then md5 of those binary digests."""

    def __init__(self, etag: str, parts: int | None, part_size: int) -> None:
        self.etag, self.parts, self.part_size = etag, parts, part_size
        self._outer = hashlib.md5()  # of the binary md5s of the parts complete so far
        self._count = 0
        self._part = hashlib.md5()
        self._filled = 0  # bytes in the part under way

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            take = min(len(view), self.part_size - self._filled)
            self._part.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self.part_size:
                self._outer.update(self._part.digest())
                self._count += 1
                self._part, self._filled = hashlib.md5(), 0

    def etag_now(self) -> tuple[str, int]:
        """The ETag of the bytes fed so far, and their number of parts (the last part may be short)."""
        outer, count = self._outer.copy(), self._count
        if self._filled or not count:
            outer.update(self._part.digest())
            count += 1
        return outer.hexdigest(), count

    def problem(self) -> str | None:
        etag, count = self.etag_now()
        if self.parts is not None and count != self.parts:
            return (f"multipart checksum: {count} parts of {self.part_size} bytes, where the record states "
                    f"{self.parts}")
        if etag != self.etag:
            return f"multipart checksum {etag}-{count} differs from the record's {self.etag}"
        return None


class _Nothing:
    """Nothing to check (the size is checked elsewhere)."""

    def update(self, data: bytes | memoryview) -> None:
        pass

    def problem(self) -> str | None:
        return None


def md5_of(path: Path) -> str:
    """The md5 of a whole file, hex (hashlib's file_digest: read in blocks, never whole into memory)."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "md5").hexdigest()


def feed(digest: Digest, path: Path, length: int | None) -> Digest:
    """Feed ``digest`` the first ``length`` bytes of ``path`` (all of it when None; blocking)."""
    with open(path, "rb") as stream:
        remaining = length
        while remaining is None or remaining > 0:
            block = stream.read(HASH_BLOCK if remaining is None else min(HASH_BLOCK, remaining))
            if not block:
                if remaining is None:
                    break
                raise OSError(f"{path} is shorter than {length} bytes")
            digest.update(block)
            if remaining is not None:
                remaining -= len(block)
    return digest


def multipart_etag(data: bytes, part_size: int) -> str:
    """The ``<etag hex>-<parts>`` S3 gives ``data`` uploaded in parts of ``part_size`` bytes."""
    digest = MultipartDigest("", None, part_size)
    digest.update(data)
    etag, count = digest.etag_now()
    return f"{etag}-{count}"

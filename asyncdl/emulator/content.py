"""Deterministic file content: any size, streamed from any offset, never stored.

A file's bytes are a window onto one random block whose length is a prime
(2**20 - 3), so content is periodic with a period that no power-of-two chunk or
segment size divides: a client that writes a chunk at the wrong offset gets a
wrong md5. Each file starts at its own offset in the block, so files differ.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

PERIOD = 2**20 - 3  # a prime
MAX_CHUNK = 2**20


class ContentSource:
    """Bytes of generated files, derived from a seed."""

    def __init__(self, seed: int) -> None:
        block = random.Random(f"content:{seed}").randbytes(PERIOD)
        # long enough that a chunk of MAX_CHUNK (> PERIOD) starting anywhere in the period fits
        self._buffer = memoryview((block * (2 + MAX_CHUNK // PERIOD))[: PERIOD + MAX_CHUNK])

    @staticmethod
    def offset_for(name: str, seed: int) -> int:
        """A stable start offset for a file, from its name."""
        digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % PERIOD

    def chunk(self, offset: int, start: int, length: int) -> memoryview:
        """``length`` (<= MAX_CHUNK) bytes of the file with ``offset``, from ``start``."""
        if length > MAX_CHUNK:
            raise ValueError("chunk too long")
        begin = (offset + start) % PERIOD
        return self._buffer[begin : begin + length]

    def iter_range(self, offset: int, start: int, end: int, chunk_size: int) -> Iterator[memoryview]:
        """Chunks of the file covering ``[start, end)``."""
        chunk_size = min(chunk_size, MAX_CHUNK)
        position = start
        while position < end:
            length = min(chunk_size, end - position)
            yield self.chunk(offset, position, length)
            position += length

    def md5(self, offset: int, size: int) -> str:
        """The md5 of a whole generated file (hashes every byte: slow for GB files)."""
        digest = hashlib.md5()
        for piece in self.iter_range(offset, 0, size, MAX_CHUNK):
            digest.update(piece)
        return digest.hexdigest()

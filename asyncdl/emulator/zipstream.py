"""A streamed ZIP (stored, no compression), as Zenodo's files-archive sends it.

Sizes and CRCs are not known before the data, so each entry ends with a data
descriptor; the archive has no Content-Length and cannot be resumed.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator

_DOS_TIME, _DOS_DATE = 0, (2020 - 1980) << 9 | 1 << 5 | 1
_FLAGS = 0x08 | 0x800  # data descriptor follows; names are UTF-8


def zip_stream(entries: Iterable[tuple[str, Iterable[bytes | memoryview]]]) -> Iterator[bytes]:
    """Yield the bytes of a ZIP holding ``(name, chunks)`` entries, in order."""
    central: list[bytes] = []
    offset = 0
    for name, chunks in entries:
        encoded = name.encode()
        header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, _FLAGS, 0, _DOS_TIME, _DOS_DATE, 0, 0, 0,
                             len(encoded), 0) + encoded
        yield header
        crc, size = 0, 0
        for chunk in chunks:
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            yield bytes(chunk)
        yield struct.pack("<IIII", 0x08074B50, crc, size, size)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, _FLAGS, 0, _DOS_TIME, _DOS_DATE,
                                   crc, size, size, len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
        offset += len(header) + size + 16
    directory = b"".join(central)
    yield directory
    yield struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(directory), offset, 0)

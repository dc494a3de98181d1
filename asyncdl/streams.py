"""Stream helpers shared by the single-writer tasks (journal, committer)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

T = TypeVar("T")


async def batches(receive: MemoryObjectReceiveStream[T], limit: int = 1 << 30) -> AsyncIterator[list[T]]:
    """Lists of items: each time one arrives, with everything already waiting behind it (up to ``limit``)."""
    async with receive:
        async for first in receive:
            batch = [first]
            while len(batch) < limit:
                try:
                    batch.append(receive.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            yield batch

"""File bodies, shared by the instance's content routes and the object store: Range parsing, and bytes sent
with bandwidth caps (per connection, and one shared by every connection of the server) and body faults
(reset, truncate, stall, corrupt)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

from asyncdl.emulator.dataset import Dataset, FileSpec
from asyncdl.emulator.faults import FaultConfig, FaultPlan

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """``(start, end)`` half-open, "unsatisfiable", or None to serve the whole file."""
    found = _RANGE.match(header.strip())
    if not found or (not found.group(1) and not found.group(2)):
        return None
    first, last = found.group(1), found.group(2)
    if not first:  # suffix: the last N bytes
        length = min(int(last), size)
        return (size - length, size) if length else "unsatisfiable"
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size:
        return "unsatisfiable"
    if end <= start:
        return None
    return start, end


async def break_body(request: web.Request, fault: str, stall_seconds: float) -> None:
    """End a body early: a reset (RST), a clean close (truncation), or a stall."""
    transport = request.transport
    if fault == "stall":
        await asyncio.sleep(stall_seconds)
    if transport is None:
        return
    if fault == "reset":
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        transport.abort()
    else:
        transport.close()


def ranged_response(request: web.Request, spec: FileSpec, headers: dict[str, str], *,
                    honour_range: bool = True) -> tuple[web.StreamResponse, int, int] | None:
    """The response for the bytes ``[start, end)`` the request's Range asks (206 with Content-Range) or for the
    whole file (200, also when Range is not honoured), and those bounds; None when the range is unsatisfiable."""
    requested = parse_range(request.headers.get("Range", ""), spec.size) if honour_range else None
    if requested == "unsatisfiable":
        return None
    start, end, status = 0, spec.size, 200
    if isinstance(requested, tuple):
        start, end = requested
        status = 206
        headers = {**headers, "Content-Range": f"bytes {start}-{end - 1}/{spec.size}"}
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = spec.mimetype
    response.content_length = end - start
    return response, start, end


class SharedLink:
    """One pipe for every connection of a server: ``rate`` bytes a second in all, each piece carried in turn
    as it comes (a piece waits for the pieces before it, whichever connection sent them)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._free_at = 0.0  # when the pipe has carried every piece given so far (monotonic)

    async def carry(self, nbytes: int) -> None:
        now = time.monotonic()
        self._free_at = max(now, self._free_at) + nbytes / self.rate
        await asyncio.sleep(self._free_at - now)


def shared_link(faults: FaultConfig) -> SharedLink | None:
    """The server's shared pipe, when ``shared_bandwidth`` caps one."""
    return SharedLink(faults.shared_bandwidth) if faults.shared_bandwidth > 0 else None


@dataclass
class BodySender:
    """Sends file bytes; ``count(n, label)`` hears of every byte sent, ``struck(fault, path)`` of every fault."""

    dataset: Dataset
    faults: FaultPlan
    chunk_size: int
    count: Callable[[int, str], None]
    struck: Callable[[str, str], None]
    link: SharedLink | None = None

    async def send(self, request: web.Request, response: web.StreamResponse, spec: FileSpec, start: int,
                   end: int, *, label: str, fault_key: str, attempt: int) -> bool:
        """Write bytes [start, end); False when the client left before the end (a fault that struck is not
        that). Faults are decided by ``fault_key`` (a URL) and ``attempt`` (its number of earlier tries)."""
        with contextlib.suppress(ConnectionError, ClientConnectionResetError):  # the client went away
            return await self._send(request, response, spec, start, end, label, fault_key, attempt)
        return False

    async def _send(self, request: web.Request, response: web.StreamResponse, spec: FileSpec, start: int,
                    end: int, label: str, key: str, attempt: int) -> bool:
        fault = self.faults.body_fault(key, attempt)
        strike = start + self.faults.position(fault, key, attempt, end - start) if fault else end
        bandwidth = self.faults.config.bandwidth
        began, sent = time.monotonic(), 0
        chunk_size = min(self.chunk_size, 64 * 1024) if bandwidth or self.link else self.chunk_size
        for piece in self.dataset.iter_file(spec, start, end, chunk_size):
            position = start + sent
            if fault and position + len(piece) > strike:
                self.struck(fault, request.path)  # counted when it strikes: a body the client left earlier had none
                before = piece[: strike - position]
                if fault == "corrupt":
                    damaged = bytearray(piece)
                    damaged[strike - position] ^= 0xFF
                    piece = memoryview(bytes(damaged))
                else:
                    if before:
                        await response.write(bytes(before))
                        self.count(len(before), label)
                    await break_body(request, fault, self.faults.config.stall_seconds)
                    return True
                fault = None
            if self.link is not None:
                await self.link.carry(len(piece))
            await response.write(piece)
            sent += len(piece)
            self.count(len(piece), label)
            if bandwidth:
                lag = sent / bandwidth - (time.monotonic() - began)
                if lag > 0:
                    await asyncio.sleep(lag)
        await response.write_eof()
        return True

"""A 5 GB file, served by `asyncdl emulate` in its own process: ranges anywhere, memory flat."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from asyncdl.emulator.content import ContentSource
from tests.http_helpers import get

SIZE = 5_000_000_000


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert found, status
    return int(found.group(1)) / 1024


@pytest.fixture
def big_server() -> Iterator[tuple[str, int]]:
    command = [sys.executable, "-m", "asyncdl", "emulate", "--port", "0", "--records", "1",
               "--files-per-record", "1-1", "--large-file", "5GB", "--range", "both", "--no-rate-limits",
               "--restricted-fraction", "0", "--files-restricted-fraction", "0", "--embargoed-fraction", "0",
               "--deleted-fraction", "0", "--multi-version-fraction", "0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 60
        assert process.stderr is not None
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            found = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        assert url, "the emulator did not print its URL"
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to read peak memory")
def test_five_gigabytes_streamed_and_range_read_with_flat_memory(big_server: tuple[str, int]) -> None:
    url, pid = big_server
    hit = get(f"{url}/api/records", timeout=120).json()["hits"]["hits"][0]
    entry = next(f for f in hit["files"] if f["size"] == SIZE)
    content_url = entry["links"]["self"]
    source = ContentSource(0)
    offset = ContentSource.offset_for(f"{hit['id']}/{entry['key']}", 0)
    before = peak_rss_mib(pid)

    for first, last in ((0, 1023), (2**32 - 10, 2**32 + 10), (SIZE - 1024, SIZE - 1), (2_500_000_000, 2_500_999_999)):
        reply = get(content_url, {"Range": f"bytes={first}-{last}"})
        assert reply.status == 206
        assert reply.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
        expected = b"".join(source.iter_range(offset, first, last + 1, 2**20))
        assert reply.body == expected

    parts = urlsplit(content_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    connection.request("GET", parts.path, headers={"User-Agent": "asyncdl-tests"})
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Length") == str(SIZE)
    digest, total = hashlib.md5(), 0
    while chunk := response.read(4 * 2**20):
        digest.update(chunk)
        total += len(chunk)
    connection.close()
    assert total == SIZE
    assert f"md5:{digest.hexdigest()}" == entry["checksum"]
    after = peak_rss_mib(pid)
    assert after - before < 64, f"peak RSS grew from {before:.0f} to {after:.0f} MiB"
    assert after < 200
    print(f"emulator peak RSS: {before:.0f} MiB before, {after:.0f} MiB after 5 GB streamed; pid {os.getpid()}")

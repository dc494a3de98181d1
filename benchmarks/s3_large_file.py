"""S3: one 2 GiB file, no latency, no limit: raw throughput, with and without verification.

Models a fast institutional InvenioRDM next door. asyncdl verifies the md5 while streaming; curl -o
does not verify at all; curl | tee | md5sum is what a careful user scripts; aria2c -x1 checks the md5
after the download.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import FLAT, PYTHON, ROOT, Row, emulator, have, listing, show, timed, verify

GOAL_VS_CURL = 0.6
GOAL_VS_PIPED = 1.2  # the single stream against curl | tee | md5sum
GOAL_VS_MD5 = 0.85  # the single stream against hashlib's md5 alone on one core of this machine
REPEATS = 2


def md5_speed(size: int) -> tuple[float, float]:
    """hashlib's md5 over ``size`` bytes in 1 MiB blocks, on one core of this machine: (seconds, MB/s)."""
    block = os.urandom(2**20)
    digest = hashlib.md5()
    began = time.perf_counter()
    for _ in range(size // len(block)):
        digest.update(block)
    seconds = time.perf_counter() - began
    return seconds, size / seconds / 1e6


def run(quick: bool) -> list[Row]:
    size = 64 * 2**20 if quick else 2 * 2**30
    args = ["--records", "1", "--files-per-record", "1-1", "--file-size", "1-1", "--large-file", str(size),
            "--no-rate-limits", "--range", "both", "--md5-cache", str(ROOT / "results" / ".md5-cache.json"), *FLAT]
    rows: list[Row] = []
    with emulator(*args) as server, tempfile.TemporaryDirectory(dir=ROOT / "results") as scratch:
        remote = [f for f in listing(server) if f.size == size]
        big = remote[0]
        work = Path(scratch)

        def measure(tool: str, command: list[str] | str, dest: Path, *, verified: str) -> None:
            """Best of two runs (2 GiB writes are at the mercy of the page cache's writeback)."""
            times = []
            for _ in range(REPEATS):
                shutil.rmtree(dest, ignore_errors=True)
                dest.mkdir(parents=True)
                if isinstance(command, str):
                    began = time.perf_counter()
                    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True, capture_output=True)
                    times.append(time.perf_counter() - began)
                    shown = command
                else:
                    times.append(timed(command)[0])
                    shown = show(command)
            seconds = min(times)
            bad = verify(dest, remote) if tool.startswith(("asyncdl", "aria2c")) else None
            metrics: dict[str, object] = {"MB/s": round(size / seconds / 1e6, 1), "verifies_md5": verified,
                                          "best_of": REPEATS}
            if bad is not None:
                metrics["lost_or_bad"] = bad
            rows.append(Row("S3", tool, seconds, shown, metrics))
            shutil.rmtree(dest, ignore_errors=True)

        base = [PYTHON, "-m", "asyncdl", "get", "--base-url", server.url, big.record_id, "--progress", "none"]
        dest = work / "asyncdl"
        measure("asyncdl get (1 stream)", [*base, "-o", str(dest), "--segments", "1"], dest, verified="while streaming")
        measure("asyncdl get (default: --segments auto)", [*base, "-o", str(dest)], dest, verified="yes")
        if have("curl"):
            dest = work / "curl"
            measure("curl -o", ["curl", "-s", "-o", str(dest / "file"), big.url], dest, verified="no")
            measure("curl | tee | md5sum", f"curl -s '{big.url}' | tee '{dest}/file' | md5sum", dest,
                    verified="while streaming")
        if have("aria2c"):
            dest = work / "aria2c"
            measure("aria2c -x1", ["aria2c", "-x1", "-d", str(dest), "-o", f"{big.record_id}/{big.key}",
                                   f"--checksum=md5={big.md5}", "-q", "--file-allocation=none", big.url], dest,
                    verified="after the download")
    md5_seconds, md5_mbps = md5_speed(size)
    rows.append(Row("S3", "md5 alone (hashlib, one core, in memory)", md5_seconds, "python: hashlib.md5().update",
                    {"MB/s": round(md5_mbps, 1)}, "the machine's md5 speed, measured in this run"))
    curl = next((r for r in rows if r.tool == "curl -o"), None)
    piped = next((r for r in rows if r.tool == "curl | tee | md5sum"), None)
    for row in rows[:2]:
        if curl is not None and piped is not None and row.seconds and curl.seconds and piped.seconds:
            ratio = curl.seconds / row.seconds
            row.metrics["vs_curl"] = round(ratio, 2)
            row.note = f"goal >= {GOAL_VS_CURL}x curl -o: {'met' if ratio >= GOAL_VS_CURL else 'MISSED'}"
            if row is rows[0]:
                vs_piped, vs_md5 = piped.seconds / row.seconds, row.metrics["MB/s"] / md5_mbps
                row.metrics.update(vs_curl_tee_md5sum=round(vs_piped, 2), vs_md5_alone=round(vs_md5, 2))
                row.note += (f"; >= {GOAL_VS_PIPED}x curl|tee|md5sum: "
                             f"{'met' if vs_piped >= GOAL_VS_PIPED else 'MISSED'}; >= {GOAL_VS_MD5}x md5 alone: "
                             f"{'met' if vs_md5 >= GOAL_VS_MD5 else 'MISSED'}")
    return rows

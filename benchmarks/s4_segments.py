"""S4: one large file through a per-connection bandwidth cap: segmented against single-stream.

Models a long-haul link where each TCP connection is slow (Zenodo's single streams run at a few MB/s)
while several connections together are not. asyncdl fetches 4 segments at once and still verifies
the md5; aria2c -x4 splits the same way (handed the URL).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from benchmarks.common import FLAT, PYTHON, ROOT, Row, emulator, have, listing, show, timed, verify

SEGMENTS = 4
GOAL = 0.95  # issue 18


def run(quick: bool) -> list[Row]:
    size, cap = (24 * 10**6, 8 * 10**6) if quick else (400 * 10**6, 20 * 10**6)
    args = ["--records", "1", "--files-per-record", "1-1", "--file-size", "1-1", "--large-file", str(size),
            "--no-rate-limits", "--range", "ui", "--bandwidth", str(cap), "--chunk-size", "64KiB",
            "--md5-cache", str(ROOT / "results" / ".md5-cache.json"), *FLAT]
    rows: list[Row] = []
    with emulator(*args) as server, tempfile.TemporaryDirectory(dir=ROOT / "results") as scratch:
        remote = [f for f in listing(server) if f.size == size]
        big = remote[0]
        work = Path(scratch)

        def measure(tool: str, command: list[str], dest: Path, connections: int) -> None:
            """Best of two runs."""
            times = []
            for _ in range(2):
                shutil.rmtree(dest, ignore_errors=True)
                dest.mkdir(parents=True)
                times.append(timed(command)[0])
            seconds = min(times)
            speed = size / seconds
            rows.append(Row("S4", tool, seconds, show(command),
                            {"MB/s": round(speed / 1e6, 1), "cap_MB/s_per_connection": cap / 1e6,
                             "of_ideal": round(speed / (connections * cap), 2),
                             "lost_or_bad": verify(dest, remote), "best_of": 2}))

        base = [PYTHON, "-m", "asyncdl", "get", "--base-url", server.url, big.record_id, "--progress", "none",
                "--segment-threshold", "1MB"]
        dest = work / "asyncdl"
        measure(f"asyncdl get --segments {SEGMENTS}", [*base, "-o", str(dest), "--segments", str(SEGMENTS)], dest,
                SEGMENTS)
        measure("asyncdl get --segments 1", [*base, "-o", str(dest), "--segments", "1"], dest, 1)
        if have("aria2c"):
            dest = work / "aria2c"
            measure(f"aria2c -x{SEGMENTS}", ["aria2c", f"-x{SEGMENTS}", f"-s{SEGMENTS}", "-k1M", "-d", str(dest),
                                             "-o", f"{big.record_id}/{big.key}", f"--checksum=md5={big.md5}", "-q",
                                             "--file-allocation=none", big.download_url], dest, SEGMENTS)
    share = rows[0].metrics["of_ideal"]
    rows[0].note = f"goal >= {GOAL} x segments x cap: {'met' if share >= GOAL else 'MISSED'} ({share})"
    return rows

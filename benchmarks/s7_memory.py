"""S7: peak memory (RSS) for a 100,000-file plan, and for 16 concurrent multi-GB files.

Models a community-sized mirror (the plan must not grow with the selection) and a server mirroring
many large files at once (memory must not grow with file size or count).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import FLAT, PYTHON, ROOT, Row, emulator, peak_rss_of, show

GOAL_MIB = 150


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    records, files = (200, 10) if quick else (5000, 20)
    plan_args = ["--records", str(records), "--files-per-record", f"{files}-{files}", "--file-size", "100-2000",
                 "--no-rate-limits", *FLAT]
    with emulator(*plan_args) as server, tempfile.TemporaryDirectory(dir=ROOT / "results") as scratch:
        command = [PYTHON, "-m", "asyncdl", "mirror", "--base-url", server.url, "--query", "*",
                   str(Path(scratch) / "plan"), "--dry-run", "--progress", "none"]
        peak, seconds = peak_rss_of(command)
        rows.append(Row("S7", f"asyncdl mirror --dry-run ({records * files:,} files planned)", seconds,
                        show(command) + " > /dev/null", {"peak_RSS_MiB": round(peak, 1)},
                        f"goal < {GOAL_MIB} MiB: {'met' if peak < GOAL_MIB else 'MISSED'}"))
    count, size, window = (4, 256 * 2**20, 5.0) if quick else (16, 2 * 2**30, 20.0)
    big_args = ["--records", str(count), "--files-per-record", "1-1", "--file-size", "1-1",
                *[a for _ in range(count) for a in ("--large-file", str(size))], "--no-rate-limits",
                "--md5-cache", str(ROOT / "results" / ".md5-cache.json"), *FLAT]
    with emulator(*big_args) as server, tempfile.TemporaryDirectory(dir=ROOT / "results") as scratch:
        command = [PYTHON, "-m", "asyncdl", "mirror", "--base-url", server.url, "--query", "*",
                   str(Path(scratch) / "big"), "--concurrency", str(count), "--connections-per-host", str(count),
                   "--segments", "1", "--progress", "none"]
        peak, seconds = peak_rss_of(command, stop_after=window)
        rows.append(Row("S7", f"asyncdl mirror ({count} files of {size / 2**30:g} GiB at once)", seconds,
                        show(command), {"peak_RSS_MiB": round(peak, 1), "measured_for_s": window},
                        f"interrupted after {window:g} s (steady state); goal < {GOAL_MIB} MiB: "
                        f"{'met' if peak < GOAL_MIB else 'MISSED'}"))
    return rows

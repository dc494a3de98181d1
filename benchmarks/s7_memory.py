"""S7: peak memory (RSS) for a 100,000-file plan, for 16 concurrent multi-GB files, and for re-running a
finished 100,000-record mirror from its journal (beside the time to stat every file of it, in the same run).

Models a community-sized mirror (the plan must not grow with the selection), a server mirroring many large
files at once (memory must not grow with file size or count), and the nightly re-run of a finished mirror
(no request; memory and time must not grow with what the journal holds).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import FLAT, PYTHON, ROOT, Row, emulator, peak_rss_of, show, timed

GOAL_MIB = 150
GOAL_RERUN_X_STAT = 3.0  # a no-op re-run takes at most this many times the time to stat every file


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
    rows += rerun(quick)
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


def stat_every_file(folder: Path) -> tuple[int, float]:
    """Files under ``folder`` (its bookkeeping aside) and the seconds to stat each once (the walk not timed)."""
    paths = [os.path.join(top, name) for top, dirs, names in os.walk(folder) for name in names
             if ".asyncdl" not in top and not (top == str(folder) and name == "manifest.csv")]
    began = time.perf_counter()
    for path in paths:
        os.stat(path)
    return len(paths), time.perf_counter() - began


def rerun(quick: bool) -> list[Row]:
    """A finished mirror of one file a record, run again: peak RSS, seconds and requests, beside a stat of
    every file (the least any tool that checks the disk must do)."""
    records = 500 if quick else 100_000
    args = ["--records", str(records), "--files-per-record", "1-1", "--file-size", "10-100", "--no-rate-limits",
            *FLAT]
    with emulator(*args) as server, tempfile.TemporaryDirectory(dir=ROOT / "results") as scratch:
        dest = Path(scratch) / "finished"
        command = [PYTHON, "-m", "asyncdl", "mirror", "--base-url", server.url, "--query", "*", str(dest),
                   "--concurrency", "16", "--archive", "never", "--progress", "none"]
        first, _ = timed(command, timeout=7200)
        server.reset()
        peak, seconds = peak_rss_of(command)
        requests = server.stats()["total_requests"]
        files, stat_seconds = stat_every_file(dest)
        ratio = seconds / stat_seconds if stat_seconds else float("inf")
        met = peak < GOAL_MIB and requests == 0 and ratio <= GOAL_RERUN_X_STAT
        return [
            Row("S7", f"asyncdl mirror re-run of a finished {records:,}-record mirror (no-op)", seconds, show(command),
                {"peak_RSS_MiB": round(peak, 1), "requests": requests, "first_run_s": round(first, 1),
                 "x_stat_every_file": round(ratio, 1)},
                f"goal < {GOAL_MIB} MiB, 0 requests, <= {GOAL_RERUN_X_STAT:g}x the stat of every file: "
                f"{'met' if met else 'MISSED'}"),
            Row("S7", f"os.stat of every file of that mirror ({files:,} files, in-process)", stat_seconds,
                "python: os.stat(path) for each file", {"files": files}, "the bound beside the re-run"),
        ]

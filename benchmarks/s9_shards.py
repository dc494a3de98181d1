"""S9: shards of one destination behind one address, under Zenodo's guest limits (scaled: a "minute" of a
few seconds).

Models a Slurm job array mirroring one selection from one cluster address. The figures that matter are the
search requests against the pages the selection needs (the shards share one crawl), the time to the last
file, and that every file is served exactly once. One process without shards is the reference. Files are
fetched one request each (``--archive never``), so "served once" is a count of file requests.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import FLAT, PYTHON, Row, emulator, listing, show, verify

GUEST_PAGE = 25


def run(quick: bool) -> list[Row]:
    records, minute, counts = (40, 1.0, (4,)) if quick else (120, 10.0, (4, 8))
    args = ["--records", str(records), "--files-per-record", "2-2", "--file-size", "2000-20000", "--minute",
            str(minute), *FLAT]
    pages_needed = math.ceil(records / GUEST_PAGE)
    rows: list[Row] = []
    with emulator(*args) as server, tempfile.TemporaryDirectory() as scratch:
        remote = listing(server)
        time.sleep(minute * 1.1)  # let the listing's requests leave the window
        for shards in (1, *counts):
            dest = Path(scratch) / f"shards-{shards}"
            server.reset()
            base = [PYTHON, "-m", "asyncdl", "mirror", "--base-url", server.url, "--query", "*", str(dest),
                    "--archive", "never", "--progress", "none"]
            commands = [base + (["--shard", f"{k}/{shards}"] if shards > 1 else []) for k in range(1, shards + 1)]
            began = time.perf_counter()
            processes = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                         for c in commands]
            codes = [p.wait(timeout=900) for p in processes]
            seconds = time.perf_counter() - began
            stats = server.stats()
            searches = stats["requests"].get("search", 0)
            file_requests = stats["requests"].get("content", 0)
            goal = pages_needed + 2 * shards
            shown = show(commands[-1]) + (f"   (and shards 1..{shards - 1} of {shards} at once)" if shards > 1 else "")
            rows.append(Row("S9", f"asyncdl mirror, {shards} shard{'s' if shards > 1 else ''}" if shards > 1
                            else "asyncdl mirror, no shards", seconds, shown,
                            {"shards": shards, "files": len(remote), "pages_needed": pages_needed,
                             "searches": searches, "file_requests": file_requests, "429s": stats["rate_limited"],
                             "lost_or_bad": verify(dest, remote), "exits": sorted(set(codes))},
                            f"goals: searches <= pages needed + 2 a shard ({goal}) "
                            f"{'met' if searches <= goal else 'MISSED'}, every file served once "
                            f"{'met' if file_requests == len(remote) else 'MISSED'}"))
            time.sleep(minute * 1.1)  # a fresh window for the next run (all shards share one User-Agent)
            for process in processes:
                if process.returncode:
                    print(process.stderr.read() if process.stderr else "", file=sys.stderr)
    return rows

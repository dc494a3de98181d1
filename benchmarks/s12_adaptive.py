"""S12: adaptive concurrency. ``-j auto`` (the default) against every fixed ``-j`` of 1, 2, 4, 8 and 16, on
three links, with nothing else tuned:

- a per-connection cap (10 MB/s) with large files: more connections, more bytes, up to the host's limit;
- a cap shared by every connection (50 MB/s): one or two connections fill it, more only wait;
- 100 ms per request with small files: the time is in the round trips, concurrency hides them.

Every run mirrors the same selection from the same server (one request a file, ``--archive never``, so
that concurrency is what is measured, not the archive rule); the auto row prints the levels it chose.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import FLAT, PYTHON, ROOT, Row, emulator, listing, show, timed, verify

FIXED = (1, 2, 4, 8, 16)
GOAL = 0.9  # issue 19: auto reaches at least 0.9x the best fixed -j on every profile, and is never the worst


@dataclass(frozen=True)
class Profile:
    name: str
    emulator: tuple[str, ...]


def profiles(quick: bool) -> list[Profile]:
    large = "4MB" if quick else "64MB"
    shared = "4MB" if quick else "24MB"
    return [
        Profile("per-connection cap 10 MB/s, large files",
                ("--records", "4" if quick else "16", "--files-per-record", "1-1", "--file-size", f"{large}-{large}",
                 "--bandwidth", "10MB")),
        Profile("shared cap 50 MB/s",
                ("--records", "4" if quick else "16", "--files-per-record", "2-2", "--file-size",
                 f"{shared}-{shared}", "--shared-bandwidth", "50MB")),
        Profile("100 ms latency, small files",
                ("--records", "10" if quick else "50", "--files-per-record", "4-4" if quick else "20-20",
                 "--file-size", "8KiB-8KiB", "--latency", "0.1")),
    ]


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    for profile in profiles(quick):
        rows += compare(profile, (1, 4) if quick else FIXED)
    return rows


def compare(profile: Profile, fixed: tuple[int, ...]) -> list[Row]:
    """Every fixed -j and auto on one profile's server, the auto row judged against the fixed ones."""
    args = [*profile.emulator, "--no-rate-limits", "--md5-cache", str(ROOT / "results" / ".md5-cache.json"), *FLAT]
    with emulator(*args) as server, tempfile.TemporaryDirectory(dir=ROOT / "results") as scratch:
        remote = listing(server)
        megabytes = sum(f.size for f in remote) / 1e6

        def measure(jobs: str) -> Row:
            dest = Path(scratch) / f"j{jobs}"
            command = [PYTHON, "-m", "asyncdl", "mirror", "--base-url", server.url, "--query", "*", str(dest),
                       "--archive", "never", "--progress", "json", "-j", jobs]
            seconds, result = timed(command)
            summary = json.loads(result.stdout.strip().splitlines()[-1])
            figures: dict[str, object] = {"files": len(remote), "lost_or_bad": verify(dest, remote),
                                          "MB/s": round(megabytes / seconds, 1)}
            if jobs == "auto":
                levels = [level for _, level in summary.get("concurrency", [])]
                figures["levels"] = "→".join(map(str, levels)) or "?"
            shutil.rmtree(dest, ignore_errors=True)
            return Row("S12", f"asyncdl -j {jobs}, {profile.name}", seconds, show(command), figures)

        measured = [measure(str(jobs)) for jobs in fixed]
        auto = measure("auto")
    best = min(measured, key=lambda r: r.seconds or 0.0)
    worst = max(measured, key=lambda r: r.seconds or 0.0)
    assert auto.seconds and best.seconds and worst.seconds
    share = round(best.seconds / auto.seconds, 2)
    best_jobs = best.tool.split(",", 1)[0].rsplit(" ", 1)[-1]
    auto.metrics.update(vs_best_fixed=share, best_fixed=best_jobs)
    auto.note = (f"goal >= {GOAL}x the best fixed (-j {best_jobs}): {'met' if share >= GOAL else 'MISSED'}; "
                 f"never the worst: {'met' if auto.seconds < worst.seconds else 'MISSED'}")
    return [*measured, auto]

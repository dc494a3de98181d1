"""S2: many small files under Zenodo's rate limits (133 requests and 30 searches a minute for guests),
with time scaled down (a "minute" of a few seconds) so the run stays short.

Models what every bulk download from zenodo.org meets. The figures that matter are the requests a tool
needs for the same verified mirror (asyncdl, by default, takes a record of small files as one
files-archive request), its time against the moving window's bound for those requests, the 429s provoked
and the files lost. With L requests per window W, R requests cannot all be answered before
(ceil(R / L) - 1) * W: the first L go at once, each later batch of L a window after the one before.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import FLAT, PYTHON, ROOT, Row, emulator, have, listing, show, verify, zenodo_get_row

GUEST_PER_MINUTE = 133


def window_bound(requests: int, limit: int, window: float) -> float:
    """The least time in which ``requests`` requests fit under ``limit`` per moving ``window``."""
    return max(0, math.ceil(requests / limit) - 1) * window


def run(quick: bool) -> list[Row]:
    records, files, minute = (10, 10, 1.0) if quick else (30, 10, 10.0)
    args = ["--records", str(records), "--files-per-record", f"{files}-{files}", "--file-size", "2000-20000",
            "--minute", str(minute), *FLAT]
    rows: list[Row] = []
    with emulator(*args) as server, tempfile.TemporaryDirectory() as scratch:
        remote = listing(server)
        work = Path(scratch)
        time.sleep(minute * 1.1)  # let the listing's requests leave the window

        def measure(tool: str, command: list[str], dest: Path, note: str) -> None:
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            server.reset()
            began = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, timeout=900)
            seconds = time.perf_counter() - began
            stats = server.stats()
            requests = stats["total_requests"] - stats["rate_limited"]
            floor = window_bound(requests, GUEST_PER_MINUTE, minute)
            rows.append(Row("S2", tool, seconds, show(command),
                            {"files": len(remote), "lost_or_bad": verify(dest, remote),
                             "429s": stats["rate_limited"], "requests": stats["total_requests"],
                             "requests_per_file": round(stats["total_requests"] / len(remote), 3),
                             "window_bound_s": round(floor, 1),
                             "vs_bound": round(seconds / floor, 2) if floor else None,
                             "exit": result.returncode}, note))
            time.sleep(minute * 1.1)  # a fresh window for the next tool (each tool also has its own UA)

        for tool, extra, note in (("asyncdl mirror", [], "crawls; archives by default (auto)"),
                                  ("asyncdl mirror --archive never", ["--archive", "never"],
                                   "crawls; one request per file; paces by the rate-limit headers")):
            dest = work / "asyncdl"
            measure(tool, [PYTHON, "-m", "asyncdl", "mirror", "--base-url", server.url, "--query", "*", str(dest),
                           "--concurrency", "8", "--progress", "none", *extra], dest, note)
        if have("aria2c"):
            urls = work / "aria2.txt"
            urls.write_text("".join(f"{f.url}\n  out={f.record_id}/{f.key}\n  checksum=md5={f.md5}\n" for f in remote))
            dest = work / "aria2c"
            measure("aria2c -j8", ["aria2c", "-i", str(urls), "-j", "8", "-d", str(dest), "-q",
                                   "--file-allocation=none", "--console-log-level=error"], dest,
                    "handed the URL list; default retries")
        if have("curl"):
            config = work / "curl.cfg"
            dest = work / "curl"
            config.write_text("".join(f'url = "{f.url}"\noutput = "{dest}/{f.record_id}/{f.key}"\n' for f in remote))
            measure("curl --parallel 8", ["curl", "--parallel", "--parallel-max", "8", "--create-dirs", "-s",
                                          "-K", str(config)], dest, "handed the URL list; 429 bodies kept as files")
        row = zenodo_get_row("S2", args, remote, work / "zenodo_get", note="over HTTPS; honours Retry-After")
        if row is not None:
            rows.append(row)
            time.sleep(minute * 1.1)
        dest = work / "seed"
        measure("seed notebook loop (urlretrieve)", [PYTHON, str(ROOT / "peers" / "seed_loop.py"), server.url, "*",
                                                     str(dest)], dest, "sequential; stops at the first error")
    judge(rows)
    return rows


def judge(rows: list[Row]) -> None:
    """The goals: by default at most 0.35 requests a file and 0.4x zenodo_get's time; one request per file
    within 1.05x of the window's bound; no 429 and no file lost either way."""
    peer = next((r for r in rows if r.tool.startswith("zenodo_get")), None)
    for row in rows:
        if not row.tool.startswith("asyncdl"):
            continue
        m = row.metrics
        clean = m["429s"] == 0 and m["lost_or_bad"] == 0
        if row.tool == "asyncdl mirror":
            goals = [("<= 0.35 requests a file", m["requests_per_file"] <= 0.35), ("no 429, no loss", clean)]
            if peer is not None and peer.seconds:
                m["time_vs_zenodo_get"] = round((row.seconds or 0) / peer.seconds, 2)
                goals.append(("<= 0.4x zenodo_get's time", m["time_vs_zenodo_get"] <= 0.4))
        else:
            goals = [("<= 1.05x the window's bound", m["vs_bound"] is not None and m["vs_bound"] <= 1.05),
                     ("no 429, no loss", clean)]
        row.note += "; goals: " + ", ".join(f"{what} {'met' if ok else 'MISSED'}" for what, ok in goals)

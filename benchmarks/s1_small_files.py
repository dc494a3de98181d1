"""S1: many small files over a link with 50 ms latency per request (no rate limit).

Models mirroring a community of many small records from a server far away. asyncdl crawls the
selection itself; aria2c and curl are handed the finished URL list (with md5s for aria2c); the seed
notebook lists and downloads one file after another.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import FLAT, PYTHON, ROOT, Row, emulator, have, listing, show, timed, verify, zenodo_get_row

CONCURRENCY = 16
GUEST_PAGE = 25  # records a search page gives a guest
GOAL_VS_BOUND = 1.1  # one request a file, against (ceil(files / concurrency) + pages) x latency + start-up
GOAL_VS_ARIA2C = 0.85


def run(quick: bool) -> list[Row]:
    records, files, size, latency = (8, 5, 16384, 0.02) if quick else (40, 20, 16384, 0.05)
    args = ["--records", str(records), "--files-per-record", f"{files}-{files}", "--file-size", f"{size}-{size}",
            "--latency", str(latency), "--no-rate-limits", *FLAT]
    rows: list[Row] = []
    with emulator(*args) as server, tempfile.TemporaryDirectory() as scratch:
        remote = listing(server)
        work = Path(scratch)

        def measure(tool: str, command: list[str], dest: Path, note: str = "") -> None:
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            server.reset()
            seconds, _ = timed(command)
            stats = server.stats()
            rows.append(Row("S1", tool, seconds, show(command),
                            {"files": len(remote), "lost_or_bad": verify(dest, remote),
                             "requests": stats["total_requests"]}, note))

        dest = work / "asyncdl"
        mirror = [PYTHON, "-m", "asyncdl", "mirror", "--base-url", server.url, "--query", "*", str(dest),
                  "--concurrency", str(CONCURRENCY), "--progress", "none"]
        measure("asyncdl mirror", mirror, dest, "crawls the selection itself; md5 verified")
        measure("asyncdl mirror --archive never", [*mirror, "--archive", "never"], dest,
                "one request a file, as the peers; crawls; md5 verified")
        startup, _ = timed([PYTHON, "-m", "asyncdl", "--version"])
        pages = math.ceil(records / GUEST_PAGE)
        bound = (math.ceil(len(remote) / CONCURRENCY) + pages) * latency + startup
        rows.append(Row("S1", "physical bound, one request a file", bound,
                        f"(ceil({len(remote)} / {CONCURRENCY}) + {pages} pages) x {latency} s + start-up "
                        f"{startup:.2f} s", {"startup_s": round(startup, 2)}, "measured start-up in this run"))
        if have("aria2c"):
            urls = work / "aria2.txt"
            urls.write_text("".join(f"{f.url}\n  out={f.record_id}/{f.key}\n  checksum=md5={f.md5}\n"
                                    for f in remote))
            dest = work / "aria2c"
            measure(f"aria2c -j{CONCURRENCY}", ["aria2c", "-i", str(urls), "-j", str(CONCURRENCY), "-d", str(dest),
                                                "--console-log-level=warn", "--summary-interval=0", "-q",
                                                "--file-allocation=none", "--auto-file-renaming=false"], dest,
                    "handed the URL list with md5s")
        if have("curl"):
            config = work / "curl.cfg"
            dest = work / "curl"
            config.write_text("".join(f'url = "{f.url}"\noutput = "{dest}/{f.record_id}/{f.key}"\n' for f in remote))
            measure(f"curl --parallel {CONCURRENCY}", ["curl", "--parallel", "--parallel-max", str(CONCURRENCY),
                                                       "--create-dirs", "-s", "-K", str(config)], dest,
                    "handed the URL list; no checksum")
        row = zenodo_get_row("S1", args, remote, work / "zenodo_get",
                             note="over HTTPS; sequential within a record; md5 checked")
        if row is not None:
            rows.append(row)
            time.sleep(0)
        dest = work / "seed"
        measure("seed notebook loop (urlretrieve)", [PYTHON, str(ROOT / "peers" / "seed_loop.py"), server.url, "*",
                                                     str(dest)], dest, "sequential, no checksum")
    base = rows[0].seconds or 1
    for row in rows:
        row.metrics["time_vs_asyncdl"] = round((row.seconds or 0) / base, 2)
    aria = next((r for r in rows if r.tool.startswith("aria2c")), None)
    if aria is not None and aria.seconds:
        ratio = (rows[0].seconds or 0) / aria.seconds
        rows[0].metrics["vs_aria2c"] = round(ratio, 2)
        rows[0].note += f"; goal <= {GOAL_VS_ARIA2C}x aria2c: {'met' if ratio <= GOAL_VS_ARIA2C else 'MISSED'}"
    per_file, bound_row = rows[1], rows[2]
    if per_file.seconds and bound_row.seconds:
        ratio = per_file.seconds / bound_row.seconds
        per_file.metrics["vs_bound"] = round(ratio, 2)
        per_file.note += f"; goal <= {GOAL_VS_BOUND}x the bound: {'met' if ratio <= GOAL_VS_BOUND else 'MISSED'}"
    return rows

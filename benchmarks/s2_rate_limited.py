"""S2: many small files under Zenodo's rate limits (133 requests and 30 searches a minute for guests),
with time scaled down (a "minute" of a few seconds) so the run stays short.

Models what every bulk download from zenodo.org meets. The figure that matters is the time against the
theoretical minimum (requests / budget), the 429s provoked and the files lost.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import FLAT, PYTHON, ROOT, Row, emulator, have, listing, show, verify, zenodo_get_row

GUEST_PER_MINUTE = 133


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
            floor = max(0.0, (requests - GUEST_PER_MINUTE) / GUEST_PER_MINUTE * minute)
            rows.append(Row("S2", tool, seconds, show(command),
                            {"files": len(remote), "lost_or_bad": verify(dest, remote),
                             "429s": stats["rate_limited"], "requests": stats["total_requests"],
                             "theoretical_min_s": round(floor, 1),
                             "vs_minimum": round(seconds / floor, 2) if floor else None,
                             "exit": result.returncode}, note))
            time.sleep(minute * 1.1)  # a fresh window for the next tool (each tool also has its own UA)

        dest = work / "asyncdl"
        measure("asyncdl mirror", [PYTHON, "-m", "asyncdl", "mirror", "--base-url", server.url, "--query", "*",
                                   str(dest), "--concurrency", "8", "--progress", "none"], dest,
                "crawls; paces by the rate-limit headers")
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
    return rows

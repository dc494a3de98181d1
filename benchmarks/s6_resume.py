"""S6: a 1 GiB download killed at 50% and started again: bytes transferred in total / file size.

Models the overnight run that is interrupted (a laptop sleeps, a connection drops, a job is killed).
asyncdl resumes from the bytes on disk (Range, checked); curl -C - and aria2c -c resume too when told;
a tool that restarts from zero transfers 1.5x the file.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import FLAT, PYTHON, ROOT, Row, emulator, have, listing, show, verify


def run(quick: bool) -> list[Row]:
    size = 64 * 2**20 if quick else 2**30
    cap = 40_000_000 if quick else 150_000_000  # slow enough to stop it at 50%
    args = ["--records", "1", "--files-per-record", "1-1", "--file-size", "1-1", "--large-file", str(size),
            "--no-rate-limits", "--range", "ui", "--bandwidth", str(cap),
            "--md5-cache", str(ROOT / "results" / ".md5-cache.json"), *FLAT]
    rows: list[Row] = []
    with emulator(*args) as server, tempfile.TemporaryDirectory(dir=ROOT / "results") as scratch:
        remote = [f for f in listing(server) if f.size == size]
        big = remote[0]

        def measure(tool: str, command: list[str], dest: Path, watch: Path) -> None:
            """Run, kill when ``watch`` (the file being written) holds half the size, run again."""
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            server.reset()
            began = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while process.poll() is None:
                partial = [p for p in dest.rglob("*") if p.is_file() and p.name.startswith(watch.name)]
                if partial and max(p.stat().st_size for p in partial) >= size // 2:
                    process.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.02)
            process.wait()
            subprocess.run(command, check=True, capture_output=True, timeout=900)
            seconds = time.perf_counter() - began
            served = server.stats()["bytes_served"]
            rows.append(Row("S6", tool, seconds, show(command) + "   (killed at 50%, then run again)",
                            {"transferred_vs_size": round(served / size, 3), "lost_or_bad": verify(dest, remote)}))

        work = Path(scratch)
        dest = work / "asyncdl"
        measure("asyncdl get", [PYTHON, "-m", "asyncdl", "get", "--base-url", server.url, big.record_id, "-o",
                                str(dest), "--progress", "none", "--segments", "1"], dest, Path(big.key))
        if have("curl"):
            dest = work / "curl"
            target = dest / big.record_id / big.key
            measure("curl -C -", ["curl", "-s", "-C", "-", "--create-dirs", "-o", str(target), big.download_url],
                    dest, Path(big.key))
        if have("aria2c"):
            dest = work / "aria2c"
            measure("aria2c -c -x1", ["aria2c", "-c", "-x1", "-d", str(dest), "-o", f"{big.record_id}/{big.key}",
                                      f"--checksum=md5={big.md5}", "-q", "--file-allocation=none",
                                      big.download_url], dest, Path(big.key))
    return rows

"""S8 (long, nightly): a fault soak with SIGKILLs, far bigger than the suite's; run with ``--long``.

20,000 files (plus a few hundred-MB files in segments) from an emulator that resets 10% of bodies,
answers 5% of requests with a 5xx and 2% with a 429 on top of Zenodo's scaled limits, corrupts 2%, stalls
1% and truncates 2%. The mirror is SIGKILLed at random moments, resumed each time, then left to finish.
Figures: files lost or bad at the end (must be 0), the journal's integrity, the faults the server
injected and those the last run met. Quick mode: 400 files and 3 kills.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import PYTHON, ROOT, Row, emulator, listing, show, verify

FAULTS = ["--fault-reset", "0.10", "--fault-5xx", "0.05", "--fault-429", "0.02", "--fault-corrupt", "0.02",
          "--fault-stall", "0.01", "--fault-truncate", "0.02", "--stall-seconds", "60", "--latency", "0.005",
          "--fault-seed", "8"]
SETTINGS = "[requests]\nbackoff_base = 0.1\nbackoff_max = 2.0\nread_timeout = 5.0\n"


def run(quick: bool) -> list[Row]:
    records, kills = (100, 3) if quick else (5000, 30)
    large = ["--large-file", "20MB"] if quick else [f for size in ("300MB", "200MB", "100MB")
                                                     for f in ("--large-file", size)]
    args = ["--records", str(records), "--files-per-record", "4-4", "--file-size", "200-300000", "--minute", "2",
            "--restricted-fraction", "0", "--files-restricted-fraction", "0", "--embargoed-fraction", "0",
            "--deleted-fraction", "0", "--multi-version-fraction", "0", "--md5-cache",
            str(ROOT / "results" / ".md5-cache.json"), *large, *FAULTS]
    with emulator(*args) as server, tempfile.TemporaryDirectory(dir=ROOT / "results") as scratch:
        remote = listing(server)
        server.reset()
        work = Path(scratch)
        (work / "soak.toml").write_text(SETTINGS)
        dest = work / "mirror"
        command = [PYTHON, "-m", "asyncdl", "mirror", "--base-url", server.url, "--query", "*", str(dest),
                   "--config", str(work / "soak.toml"), "--progress", "json", "-j", "16",
                   "--segment-threshold", "64MiB"]
        rng = random.Random(8)
        began = time.perf_counter()
        for _ in range(kills):
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.5, 3.0 if quick else 20.0))
            process.send_signal(signal.SIGKILL)
            process.wait()
        final = subprocess.run(command, capture_output=True, text=True, timeout=7200)
        seconds = time.perf_counter() - began
        lines = final.stdout.strip().splitlines()
        summary = json.loads(lines[-1]) if lines else {}
        with sqlite3.connect(dest / ".asyncdl" / "journal.sqlite") as db:
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        injected = server.stats()["faults"]
        metrics = {"files": len(remote), "kills": kills, "exit": final.returncode,
                   "lost_or_bad": verify(dest, remote), "journal": integrity,
                   "injected": sum(injected.values()), "met_last_run": sum(summary.get("faults", {}).values())}
        if metrics["lost_or_bad"] or integrity != "ok" or final.returncode != 0:  # a soak that loses data fails
            raise RuntimeError(f"S8 soak failed: {metrics}\n{final.stderr[-3000:]}")
        note = "faults injected over all runs; met counts only the final run's (killed runs print no summary)"
        return [Row("S8", "asyncdl mirror", seconds, show(command) + f"   (SIGKILLed {kills} times, then run "
                    "to the end)", metrics, note)]

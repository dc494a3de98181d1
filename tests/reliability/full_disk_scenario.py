"""Run inside a private mount namespace (``unshare -Urm``): a small tmpfs fills up mid-mirror.

Usage: python full_disk_scenario.py BASE_URL MOUNT_POINT REPORT_JSON. Mounts a 40 MiB tmpfs at
MOUNT_POINT, leaves about 10 MiB free with a filler file, mirrors into it (the disk fills), records what
the run said and left, deletes the filler and mirrors again. The mount vanishes with the namespace, so
everything the test checks is written to REPORT_JSON (outside the mount).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any


def mirror(base_url: str, dest: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "asyncdl", "mirror", "--base-url", base_url, "--query", "*",
                           str(dest), "--progress", "plain", "-j", "4", "--chunk-size", "256KiB"],
                          capture_output=True, text=True, timeout=300)
    return {"code": done.returncode, "stderr": done.stderr}


def snapshot(dest: Path) -> dict[str, Any]:
    files = {p.relative_to(dest).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in dest.rglob("*")
             if p.is_file() and ".asyncdl" not in p.relative_to(dest).parts[:1]}
    parts = {p.relative_to(dest).as_posix(): p.stat().st_size for p in dest.rglob("*.asyncdl-part")}
    journal = dest / ".asyncdl" / "journal.sqlite"
    integrity = None
    if journal.exists():
        with sqlite3.connect(journal) as db:
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    return {"files": files, "parts": parts, "integrity": integrity}


def served(base_url: str) -> int:
    """File bytes the emulator has sent so far."""
    with urllib.request.urlopen(f"{base_url}/_emulator/stats", timeout=30) as response:
        return int(json.load(response)["bytes_served"])


def main(base_url: str, mount_point: Path, report: Path) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount_point)], check=True)
    filler = mount_point / "filler"
    filler.write_bytes(b"\0" * (30 * 1024 * 1024))
    dest = mount_point / "mirror"
    first = mirror(base_url, dest)
    first.update(snapshot(dest), served=served(base_url))
    filler.unlink()
    second = mirror(base_url, dest)
    second.update(snapshot(dest), served=served(base_url) - first["served"])
    report.write_text(json.dumps({"first": first, "second": second}))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))

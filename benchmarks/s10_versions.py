"""S10: a concept of 5 versions that keep most of each other's files (as Zenodo's new versions point to the
same stored files), mirrored with every version.

Models `--all-versions` of a dataset that grew over time. The figures that matter are the bytes and file
requests served against the unique bytes and files: a tool that fetches every version in full pays N times.
asyncdl fetches each stored file once and links it into the other versions' folders; zenodo_get is run once
per version, as it is used.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from benchmarks.common import FLAT, PYTHON, RemoteFile, Row, emulator, listing, show, timed, verify, zenodo_get_row

VERSIONS = 5


def run(quick: bool) -> list[Row]:
    files, size = (6, "20KiB-200KiB") if quick else (10, "1MiB-4MiB")
    args = ["--records", "1", "--files-per-record", f"{files}-{files}", "--file-size", size, "--no-rate-limits",
            *FLAT, "--multi-version-fraction", "1", "--min-versions", str(VERSIONS), "--max-versions",
            str(VERSIONS), "--version-keeps", "0.8"]
    rows: list[Row] = []
    with emulator(*args) as server, tempfile.TemporaryDirectory() as scratch:
        remote = listing(server, all_versions=True)
        unique = {(f.md5, f.size) for f in remote}
        unique_bytes = sum(size for _, size in unique)
        work = Path(scratch)
        for extra, note in (([], "defaults (archives auto): each stored file fetched once, linked into the other "
                                 "versions"),
                            (["--archive", "never"], "one request per stored file")):
            dest = work / "asyncdl"
            dest.mkdir()
            server.reset()
            command = [PYTHON, "-m", "asyncdl", "mirror", "--base-url", server.url, "--query", "*",
                       "--all-versions", *extra, str(dest), "--progress", "none"]
            seconds, result = timed(command)
            stats = server.stats()
            rows.append(Row("S10", " ".join(["asyncdl mirror --all-versions", *extra]), seconds, show(command),
                            metrics(stats, remote, unique, unique_bytes, verify(dest, remote),
                                    file_requests=stats["requests"].get("content", 0),
                                    archive_requests=stats["requests"].get("archive", 0), exit=result.returncode),
                            note))
            shutil.rmtree(dest)
        peer = zenodo_get_row("S10", args, remote, work / "zenodo_get", note="run once per version")
        if peer is not None:
            peer.metrics.update(metrics(peer.metrics, remote, unique, unique_bytes, peer.metrics["lost_or_bad"]))
            rows.append(peer)
    judge(rows)
    return rows


def metrics(stats: dict[str, object], remote: list[RemoteFile], unique: set[tuple[str, int]], unique_bytes: int,
            lost: int, **extra: object) -> dict[str, object]:
    """Bytes and requests against the unique ones, and what was lost."""
    served = int(str(stats.get("bytes_served", 0)))
    requests = stats.get("total_requests", stats.get("requests", 0))
    return {"versions": VERSIONS, "files": len(remote), "unique_files": len(unique), "unique_bytes": unique_bytes,
            "bytes_served": served, "bytes_vs_unique": round(served / unique_bytes, 2) if unique_bytes else None,
            "requests": requests, "lost_or_bad": lost, **extra}


def judge(rows: list[Row]) -> None:
    """The goal: bytes served at most 1.1x the unique bytes, every version's folder complete and verified."""
    for row in rows:
        if row.tool.startswith("asyncdl"):
            m = row.metrics
            ok = m["bytes_vs_unique"] is not None and float(str(m["bytes_vs_unique"])) <= 1.1
            row.note += (f"; goals: <= 1.1x the unique bytes {'met' if ok else 'MISSED'}, every file verified "
                         f"{'met' if m['lost_or_bad'] == 0 else 'MISSED'}")

"""Shared parts of the benchmarks: an emulator in its own process, timing, machine facts, result rows."""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
PYTHON = sys.executable


@dataclass
class Row:
    """One measured tool in one scenario."""

    scenario: str
    tool: str
    seconds: float | None
    command: str
    metrics: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Emulator:
    url: str  # where it listens
    pid: int

    def _open(self, request: str | urllib.request.Request) -> Any:
        """Our own loopback server's counters; its TLS certificate (for zenodo_get) is self-signed."""
        import ssl

        context = ssl._create_unverified_context() if self.url.startswith("https") else None
        return urllib.request.urlopen(request, timeout=30, context=context)

    def stats(self) -> dict[str, Any]:
        with self._open(f"{self.url}/_emulator/stats") as reply:
            return dict(json.load(reply))

    def reset(self) -> None:
        self._open(urllib.request.Request(f"{self.url}/_emulator/reset", method="POST")).close()


@contextmanager
def emulator(*args: str) -> Iterator[Emulator]:
    """``asyncdl emulate ARGS`` on a free port in its own process (its own core, like a real server)."""
    command = [PYTHON, "-m", "asyncdl", "emulate", "--port", "0", *args]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert process.stderr is not None
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                raise RuntimeError(f"the emulator exited: {' '.join(command)}")
            found = re.findall(r"(https?://127\.0\.0\.1:\d+)", line)
            url = found[-1] if found else None
        if url is None:
            raise RuntimeError("the emulator did not start")
        yield Emulator(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def timed(command: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 900,
          cwd: Path | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command; wall seconds and its result (the run fails loudly if the command does)."""
    began = time.perf_counter()
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})}, cwd=cwd)
    elapsed = time.perf_counter() - began
    if result.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return elapsed, result


def show(command: Sequence[str]) -> str:
    """A command as a user would type it (the interpreter path shortened to 'python')."""
    return shlex.join(["python" if c == PYTHON else c for c in command])


def machine() -> dict[str, Any]:
    """Facts about this machine and the software measured."""
    memory = ""
    if Path("/proc/meminfo").exists():
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":")[1].strip()
    from asyncdl import __version__

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "memory": memory, "asyncdl": __version__, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "peers": peer_versions()}


def peer_versions() -> dict[str, str]:
    """The first line each installed peer prints of its version."""
    from importlib import metadata

    versions = {}
    for tool in ("aria2c", "curl", "openssl"):
        if have(tool):
            result = subprocess.run([tool, "version" if tool == "openssl" else "--version"], capture_output=True,
                                    text=True)
            versions[tool] = (result.stdout.splitlines() or ["?"])[0]
    for package in ("zenodo-get", "aiohttp"):
        with suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


FLAT = ["--restricted-fraction", "0", "--files-restricted-fraction", "0", "--embargoed-fraction", "0",
        "--deleted-fraction", "0", "--multi-version-fraction", "0"]
"""Emulator options for a dataset where every record is public, single-version and downloadable."""


@dataclass(frozen=True)
class RemoteFile:
    record_id: str
    key: str
    url: str  # the API content URL (links.self)
    download_url: str  # the UI URL, /records/{id}/files/{key}?download=1
    size: int
    md5: str


def _get_json(request: urllib.request.Request) -> Any:
    """GET JSON, waiting out 429s and retrying 5xx (the soak's server injects both)."""
    for _ in range(100):
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                return json.load(reply)
        except urllib.error.HTTPError as error:
            if error.code != 429 and error.code < 500:
                raise
            time.sleep(float(error.headers.get("Retry-After") or 1))
    raise RuntimeError(f"{request.full_url}: still refused after 100 tries")


def listing(server: Emulator, *, all_versions: bool = False) -> list[RemoteFile]:
    """Every file of every record (of every version with ``all_versions``), read from the API before any
    timing (what other tools are handed)."""
    from urllib.parse import quote

    files = []
    page, total = 1, None
    while total is None or (page - 1) * 100 < total:
        query = f"{server.url}/api/records?size=100&page={page}&sort=oldest" + ("&allversions=true" if all_versions
                                                                                 else "")
        body = _get_json(urllib.request.Request(query, headers={"Authorization": "Bearer emulator-token"}))
        total = body["hits"]["total"]
        for hit in body["hits"]["hits"]:
            for f in hit.get("files", []):
                files.append(RemoteFile(str(hit["id"]), f["key"], f["links"]["self"],
                                        f"{server.url}/records/{hit['id']}/files/{quote(f['key'], safe='/')}"
                                        "?download=1", f["size"], f["checksum"].split(":", 1)[1]))
        page += 1
    return files


def verify(dest: Path, files: Sequence[RemoteFile], layout: str = "{id}/{key}") -> int:
    """How many of ``files`` are missing or wrong under ``dest``."""
    import hashlib

    bad = 0
    for f in files:
        path = dest / layout.format(id=f.record_id, key=f.key)
        if not path.is_file() or path.stat().st_size != f.size:
            bad += 1
            continue
        digest = hashlib.md5()
        with path.open("rb") as stream:
            while block := stream.read(1 << 22):
                digest.update(block)
        bad += digest.hexdigest() != f.md5
    return bad


def have(tool: str) -> bool:
    """Whether a peer tool is installed (benchmarks install nothing themselves)."""
    import shutil

    return shutil.which(tool) is not None


def peak_rss_of(command: Sequence[str], *, stop_after: float | None = None) -> tuple[float, float]:
    """Run a command; its peak RSS in MiB (polled from /proc) and wall seconds. With ``stop_after``,
    interrupt it (SIGINT) after that many seconds: for measuring a steady state, not completion."""
    import signal

    began = time.perf_counter()
    process = subprocess.Popen(list(command), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            found = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
            peak = max(peak, int(found.group(1)) / 1024) if found else peak
        except OSError:
            break
        if stop_after is not None and time.perf_counter() - began > stop_after:
            process.send_signal(signal.SIGINT)
            stop_after = None
        time.sleep(0.05)
    process.wait(timeout=120)
    return peak, time.perf_counter() - began


@contextmanager
def tls_emulator(*args: str) -> Iterator[tuple[Emulator, Path]]:
    """The emulator behind TLS as https://zenodo.org (a self-signed certificate made here), for zenodo_get."""
    with tempfile.TemporaryDirectory() as folder:
        cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key),
                        "-out", str(cert), "-subj", "/CN=zenodo.org", "-addext", "subjectAltName=DNS:zenodo.org"],
                       check=True, capture_output=True)
        with emulator(*args, "--tls-cert", str(cert), "--tls-key", str(key), "--public-url",
                      "https://zenodo.org") as server:
            yield server, cert


def zenodo_get_row(scenario: str, args: Sequence[str], remote: Sequence[RemoteFile], dest: Path, *,
                   note: str) -> Row | None:
    """zenodo_get run once per record (as it is used), against a TLS twin of the emulator (same seed)."""
    if not have("openssl") or not _importable("zenodo_get"):
        return None
    wrapper = ROOT / "peers" / "zenodo_get_local.py"
    records = sorted({f.record_id for f in remote}, key=int)
    with tls_emulator(*args) as (server, cert):
        env = {"ASYNCDL_BENCH_PORT": server.url.rsplit(":", 1)[1], "ASYNCDL_BENCH_CERT": str(cert)}
        began = time.perf_counter()
        failures = 0
        for record in records:
            result = subprocess.run([PYTHON, str(wrapper), record, "-o", str(dest / record)], capture_output=True,
                                    text=True, timeout=900, env={**os.environ, **env})
            failures += result.returncode != 0
        seconds = time.perf_counter() - began
        stats = server.stats()
    command = show([PYTHON, str(wrapper), "RECORD", "-o", f"{dest}/RECORD"])
    command += f"   (for each of {len(records)} records)"
    return Row(scenario, "zenodo_get (per record)", seconds, command,
               {"files": len(remote), "lost_or_bad": verify(dest, remote),
                "requests": stats["total_requests"], "429s": stats["rate_limited"], "records_failed": failures,
                "bytes_served": stats["bytes_served"]},
               note)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None

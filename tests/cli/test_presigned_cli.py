"""`asyncdl` as a subprocess against an instance on S3 storage (`EmulatorConfig(presign=True)`): a token
mirror, and a run interrupted mid-file then resumed after its signed URL expired."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, RunningEmulator
from tests.datasets import record
from tests.http_helpers import get

Start = Callable[..., RunningEmulator]
BIG = 6_000_000


def dataset(access: str = "open") -> Dataset:
    return Dataset([record(11, concept=10, title="IODP Expedition 374 Alkalinity and pH", owners=("88403",),
                           files={"a.csv": b"a,b\n1,2\n", "big.bin": BIG}, access=access)])


def asyncdl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "asyncdl", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def verified(emu: RunningEmulator, dest: Path) -> bool:
    return all(hashlib.md5((dest / "11" / f.key).read_bytes()).hexdigest() == emu.dataset.file_md5(f)
               for f in emu.dataset.records[11].files)


def test_a_token_mirror_through_presigned_urls(start_emulator: Start, tmp_path: Path) -> None:
    """Files restricted to their owner: the token (from ZENODO_TOKEN) reached the instance, never the store."""
    emu = start_emulator(EmulatorConfig(presign=True), dataset=dataset("files-restricted"))
    result = asyncdl("mirror", "--base-url", emu.url, "--owner", "88403", str(tmp_path), "--archive", "never",
                     env={"ZENODO_TOKEN": "emulator-token"})
    assert result.returncode == 0, result.stderr
    assert verified(emu, tmp_path) and "done: 2 ok" in result.stderr
    assert emu.store_stats.credentials_seen == 0
    assert emu.stats.statuses[302] == emu.store_stats.requests == 2
    assert "X-Amz-Signature" not in result.stderr


def test_an_interrupted_file_resumes_at_the_store_after_its_signature_expired(start_emulator: Start,
                                                                              tmp_path: Path) -> None:
    expiry = 0.5
    emu = start_emulator(EmulatorConfig(presign=True, presign_expiry=expiry, rate_limits=False, range_mode="none",
                                        faults=FaultConfig(bandwidth=2_000_000)), dataset=dataset())
    command = [sys.executable, "-m", "asyncdl", "get", "--base-url", emu.url, "11", "-o", str(tmp_path),
               "--progress", "none", "--archive", "never", "--chunk-size", "65536", "--grace", "0"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    part = tmp_path / "11" / "big.bin.asyncdl-part"
    try:
        for _ in range(600):  # until a good share of the file is there
            if part.exists() and part.stat().st_size > BIG // 4:
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    kept = part.stat().st_size
    assert 0 < kept < BIG
    before = emu.stats.statuses[302]
    time.sleep(expiry * 2)  # every URL signed so far has expired
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert verified(emu, tmp_path)
    store = emu.store_stats
    assert store.range_requests >= 1 and store.statuses[206] >= 1  # resumed where the part ended, at the store
    assert emu.stats.statuses[302] > before  # the record's URL was asked for a fresh signature
    assert store.refused.total() == 0 and store.credentials_seen == 0
    assert store.bytes_served < BIG + BIG // 2  # not started again from byte 0


def test_asyncdl_emulate_presign() -> None:
    """``asyncdl emulate --presign``: downloads answer 302 to the store it names, which serves the bytes."""
    process = subprocess.Popen([sys.executable, "-m", "asyncdl", "emulate", "--port", "0", "--records", "3",
                                "--presign", "--presign-expiry", "5"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        lines = [process.stderr.readline() for _ in range(3)]
        base = re.search(r"at (http://127\.0\.0\.1:\d+)", lines[0])
        store = re.search(r"302 to presigned URLs at (http://127\.0\.0\.2:\d+) \(valid 5 s\)", lines[2])
        assert base and store, lines
        hit = get(f"{base[1]}/api/records?size=1").json()["hits"]["hits"][0]
        answer = get(f"{base[1]}/api/records/{hit['id']}/files/{hit['files'][0]['key']}/content")
        assert answer.status == 302 and answer.headers["location"].startswith(store[1])
        stored = get(answer.headers["location"])
        assert stored.status == 200 and len(stored.body) == hit["files"][0]["size"]
        assert get(f"{store[1]}/_emulator/stats").json()["requests"] == 1
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)

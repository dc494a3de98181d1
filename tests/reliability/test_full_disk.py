"""A full disk stops the run with a clear error; partial files stay resumable; it finishes once space is freed.

The small file system is a 40 MiB tmpfs in a private mount namespace (``unshare -Urm``: no root
needed where user namespaces are allowed); where that is impossible the test is skipped, saying why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from tests.cli.test_resume import expected
from tests.datasets import record

Start = Callable[..., RunningEmulator]
SCENARIO = Path(__file__).with_name("full_disk_scenario.py")


def private_mounts_work(tmp_path: Path) -> str | None:
    """Why a size-limited mount cannot be made here, or None when it can."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "unshare(1) or mount(8) is not installed"
    probe = tmp_path / "probe"
    probe.mkdir()
    tried = subprocess.run(["unshare", "-Urm", "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
                           capture_output=True, text=True, timeout=30)
    return None if tried.returncode == 0 else f"cannot mount a private tmpfs: {tried.stderr.strip()}"


def test_full_disk_stops_cleanly_and_resumes(start_emulator: Start, tmp_path: Path) -> None:
    reason = private_mounts_work(tmp_path)
    if reason:
        pytest.skip(reason)
    files: dict[str, bytes | int] = {f"part{i}.bin": 4_000_000 + i for i in range(4)}
    files.update({f"small{i}.csv": 20_000 + i for i in range(20)})
    emu = start_emulator(EmulatorConfig(rate_limits=False),
                         dataset=Dataset([record(11, concept=10, files=files)]))
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    report = tmp_path / "report.json"
    subprocess.run(["unshare", "-Urm", sys.executable, str(SCENARIO), emu.url, str(mount_point), str(report)],
                   check=True, timeout=600, cwd=Path(__file__).parents[2])
    first, second = (json.loads(report.read_text())[k] for k in ("first", "second"))
    want = expected(emu)

    assert first["code"] == 3, first["stderr"]  # the run stopped: a local problem, not a failed file
    assert "no space left" in first["stderr"] and "Traceback" not in first["stderr"]
    assert first["integrity"] == "ok"
    assert first["parts"], "the interrupted transfers keep their partial files"
    for path, md5 in first["files"].items():  # what reached a final name is correct
        assert path in ("manifest.csv",) or path.endswith(".asyncdl-part") or want[path] == md5

    assert second["code"] == 0, second["stderr"]
    assert {p: m for p, m in second["files"].items() if p != "manifest.csv"} == want
    assert second["parts"] == {} and second["integrity"] == "ok"
    data = sum(len(v) if isinstance(v, bytes) else v for v in files.values())
    complete = sum(len(v) if isinstance(v, bytes) else v for k, v in files.items() if f"11/{k}" in first["files"])
    # the second run fetched exactly what was missing: the partial files resumed where they stopped
    assert second["served"] == data - complete - sum(first["parts"].values())

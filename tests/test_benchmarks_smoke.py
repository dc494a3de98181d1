"""The benchmarks' quick mode runs every scenario end to end, the long soak too, small (a smoke test: no
timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmarks_run_every_scenario() -> None:
    result = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--long"], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    for scenario in ("S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8"):
        assert f"{scenario} asyncdl" in result.stdout, scenario  # each scenario printed its asyncdl command
    assert "lost_or_bad=0" in result.stdout

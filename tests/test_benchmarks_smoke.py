"""The benchmarks' quick mode runs every scenario end to end, the long soak too, small (a smoke test: no
timing is asserted, but asyncdl's own rows must show every file there and verified)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WITH_FILES = ("S1", "S2", "S3", "S4", "S6", "S8", "S12")  # the scenarios where asyncdl downloads files


def test_quick_benchmarks_run_every_scenario(tmp_path: Path) -> None:
    rows_path = tmp_path / "rows.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--long", "--json", str(rows_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(rows_path.read_text())
    ours = [row for row in rows if row["tool"].startswith("asyncdl")]
    assert {row["scenario"] for row in ours} == {"S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9", "S10", "S12"}
    for row in ours:
        if row["scenario"] in WITH_FILES:
            assert row["metrics"]["lost_or_bad"] == 0, row  # every asyncdl row, not just any row
    for scenario in ("S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8"):
        assert f"{scenario} asyncdl" in result.stdout, scenario  # each scenario printed its asyncdl command

"""`asyncdl list` as a user runs it (a subprocess), answering the two seed notebooks' questions."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from asyncdl.emulator import DatasetSpec, EmulatorConfig, RecordSpec, RunningEmulator

Start = Callable[..., RunningEmulator]
IODP_EXTRACT = r"Expedition\s(?P<expedition>[A-Z]?\d{3}[A-Z]?)\s(?P<analysis>.+)"


def asyncdl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "asyncdl", *args], capture_output=True, text=True, timeout=120)


def emulator(start: Start) -> RunningEmulator:
    return start(EmulatorConfig(rate_limits=False, dataset=DatasetSpec(records=150, seed=4)))


def visible(emu: RunningEmulator, keep: Callable[[RecordSpec], bool]) -> list[RecordSpec]:
    return [r for r in emu.dataset.records.values() if r.is_latest and r.searchable and keep(r)]


def test_iodp_table_with_expedition_and_analysis(start_emulator: Start) -> None:
    emu = emulator(start_emulator)
    result = asyncdl("list", "--base-url", emu.url, "--owner", "88403", "--extract", IODP_EXTRACT,
                     "--columns", "id,expedition,analysis,title,doi,conceptdoi",
                     "--sort", "expedition,conceptdoi,doi,title", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    expected = visible(emu, lambda r: "88403" in r.owners)
    assert len(expected) > 10
    assert {row["id"] for row in rows} == {str(r.id) for r in expected}
    assert list(rows[0]) == ["id", "expedition", "analysis", "title", "doi", "conceptdoi"]
    for row in rows:
        found = re.search(IODP_EXTRACT, row["title"])
        assert found and row["expedition"] == found["expedition"] and row["analysis"] == found["analysis"]
        assert row["doi"] == f"10.5281/zenodo.{row['id']}"
    assert [r["expedition"] for r in rows] == sorted(r["expedition"] for r in rows)
    assert "\x1b[" not in result.stdout + result.stderr  # no terminal codes when piped


def test_iodp_grouped_by_analysis(start_emulator: Start) -> None:
    emu = emulator(start_emulator)
    result = asyncdl("list", "--base-url", emu.url, "--owner", "88403", "--extract", IODP_EXTRACT,
                     "--group-by", "analysis", "--columns", "analysis,records,unique_downloads,unique_views",
                     "--sort", "analysis", "--format", "json")
    assert result.returncode == 0, result.stderr
    groups = {g["analysis"]: g for g in json.loads(result.stdout)}
    expected: dict[str, list[RecordSpec]] = {}
    for r in visible(emu, lambda r: "88403" in r.owners):
        expected.setdefault(re.search(IODP_EXTRACT, r.title)["analysis"], []).append(r)  # type: ignore[index]
    assert set(groups) == set(expected)
    for name, members in expected.items():
        assert groups[name]["records"] == len(members)
        assert groups[name]["unique_downloads"] == sum(r.stats["unique_downloads"] for r in members)
        assert groups[name]["unique_views"] == sum(r.stats["unique_views"] for r in members)


def test_nfdi4bioimage_downloads_csv(start_emulator: Start, tmp_path: Path) -> None:
    emu = emulator(start_emulator)
    out = tmp_path / "zenodo_nfdi4bioimage_downloads.csv"
    result = asyncdl("list", "--base-url", emu.url, "--community", "nfdi4bioimage", "--columns",
                     "url,downloads,id,conceptdoi,title", "--sort", "-downloads", "-o", str(out))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    expected = visible(emu, lambda r: "nfdi4bioimage" in r.communities)
    assert sorted(row["url"] for row in rows) == sorted(f"{emu.url}/records/{r.id}" for r in expected)
    downloads = [int(row["downloads"]) for row in rows]
    assert downloads == sorted(downloads, reverse=True)
    by_id = {str(r.id): r.stats["downloads"] for r in expected}
    assert all(int(row["downloads"]) == by_id[row["id"]] for row in rows)


def test_usage_errors_exit_2_with_one_line(start_emulator: Start) -> None:
    emu = emulator(start_emulator)
    nothing = asyncdl("list", "--base-url", emu.url)
    assert nothing.returncode == 2 and "name what to select" in nothing.stderr
    unknown = asyncdl("list", "--base-url", emu.url, "--community", "no-such-community")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [f"error: unknown community 'no-such-community' at {emu.url}"]
    bad_column = asyncdl("list", "--base-url", emu.url, "--owner", "88403", "--sort", "nope")
    assert bad_column.returncode == 2 and "cannot sort by unknown column 'nope'" in bad_column.stderr


def test_unreachable_server_exits_1_without_traceback() -> None:
    result = asyncdl("list", "--base-url", "http://127.0.0.1:9", "--owner", "1", "--retries", "0")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "error:" in result.stderr


def test_a_table_on_a_terminal_shows_the_readable_columns_and_all_on_request(start_emulator: Start,
                                                                            tmp_path: Path) -> None:
    """Run in a real pseudo-terminal (script(1)), 120 columns wide, as a person sees it."""
    emu = emulator(start_emulator)

    def on_a_terminal(*args: str) -> str:
        line = " ".join([sys.executable, "-m", "asyncdl", "list", "--base-url", emu.url, "--owner", "88403", *args])
        done = subprocess.run(["script", "-q", "-e", "-c", f"stty cols 120; {line}", "/dev/null"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", done.stdout)  # what a person sees: no control codes

    shown = on_a_terminal()
    header = next(line for line in shown.splitlines() if " id " in line and " title " in line)
    assert [cell.strip() for cell in header.strip("┃ \r").split("┃")] == [
        "id", "title", "doi", "files", "bytes", "downloads", "views"]
    assert "unique_views" not in shown and "conceptdoi" not in shown and "…" not in header
    every = on_a_terminal("--columns", "all")
    header = next(line for line in every.splitlines() if line.startswith("┃"))
    assert len(header.strip("┃ \r").split("┃")) == 16  # every column, however narrow they must get

"""The Python API where notebooks use it: the synchronous forms inside a running event loop, the table of
``records_table`` equal to ``asyncdl list``'s CSV (through pandas) and its Parquet file, and what a missing
pandas or pyarrow says."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas
import pyarrow.parquet
import pytest

from asyncdl import Config, RecordsTable, Selection, list_records, mirror_sync, records_table
from asyncdl.emulator import EmulatorConfig, RunningEmulator
from asyncdl.emulator.dataset import IODP_OWNER, DatasetSpec

Start = Callable[..., RunningEmulator]
EXTRACT = r"Expedition\s(?P<expedition>[A-Z]?\d{3}[A-Z]?)\s(?P<analysis>.+)"


@pytest.fixture
def iodp(start_emulator: Start) -> RunningEmulator:
    return start_emulator(EmulatorConfig(rate_limits=False, dataset=DatasetSpec(records=40, iodp_fraction=0.8)))


def test_the_sync_forms_work_inside_a_running_event_loop(iodp: RunningEmulator, tmp_path: Path) -> None:
    """As in a Jupyter cell: a loop runs on this thread, and anyio.run would refuse."""
    config = Config(base_url=iodp.url)
    selection = Selection(owner=IODP_OWNER, title_regex="Alkalinity")

    async def cell() -> tuple[int, int, int]:
        records = list_records(selection, config)
        table = records_table(Selection(owner=IODP_OWNER), config, extract=EXTRACT, group_by="analysis")
        summary = mirror_sync(selection, tmp_path / "alk", config)
        return len(records), len(table), summary.counts["ok"]

    records, groups, ok = asyncio.run(cell())
    assert records > 0 and groups > 1
    assert ok == sum(1 for _ in (tmp_path / "alk").rglob("*") if _.is_file() and ".asyncdl" not in _.parts
                     and _.name != "manifest.csv")


def test_the_dataframe_equals_the_csv_of_asyncdl_list(iodp: RunningEmulator, tmp_path: Path) -> None:
    options = {"extract": EXTRACT, "group_by": "analysis", "sort": "-downloads,analysis"}
    csv_path = tmp_path / "t.csv"
    listed = subprocess.run([sys.executable, "-m", "asyncdl", "list", "--base-url", iodp.url, "--owner", IODP_OWNER,
                             "--extract", options["extract"], "--group-by", options["group_by"], "--sort",
                             options["sort"], "-o", str(csv_path)], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    table = records_table(Selection(owner=IODP_OWNER), Config(base_url=iodp.url), **options)
    frame = table.to_pandas()
    assert list(frame.columns) == ["analysis", "records", "files", "bytes", *frame.columns[4:]]
    assert frame["records"].sum() == len(list_records(Selection(owner=IODP_OWNER), Config(base_url=iodp.url)))
    pandas.testing.assert_frame_equal(frame, pandas.read_csv(io.StringIO(table.to_csv())))
    pandas.testing.assert_frame_equal(pandas.read_csv(csv_path), pandas.read_csv(io.StringIO(table.to_csv())))
    assert csv_path.read_text(encoding="utf-8") == table.to_csv()


def test_asyncdl_list_writes_parquet(iodp: RunningEmulator, tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    listed = subprocess.run([sys.executable, "-m", "asyncdl", "list", "--base-url", iodp.url, "--owner", IODP_OWNER,
                             "--columns", "id,title,doi,downloads", "-o", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    read = pyarrow.parquet.read_table(path).to_pylist()
    table = records_table(Selection(owner=IODP_OWNER), Config(base_url=iodp.url), columns="id,title,doi,downloads")
    assert read == table.picked() and len(read) > 0
    to_terminal = subprocess.run([sys.executable, "-m", "asyncdl", "list", "--base-url", iodp.url, "--owner",
                                  IODP_OWNER, "--format", "parquet"], capture_output=True, text=True, timeout=60)
    assert to_terminal.returncode == 2 and "--format parquet writes a file: give -o FILE.parquet" in to_terminal.stderr


def test_a_missing_pandas_is_one_line_saying_how_to_get_it(tmp_path: Path) -> None:
    blocker = tmp_path / "pandas.py"
    blocker.write_text("raise ImportError('no pandas here')\n")
    code = ("from asyncdl import RecordsTable\n"
            "try:\n    RecordsTable(({'id': 1},), ('id',)).to_pandas()\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                           env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert shown.stdout.strip() == "UsageError a DataFrame needs pandas: pip install 'asyncdl[pandas]'", shown.stderr


def test_a_table_shows_itself_in_a_notebook_as_markdown() -> None:
    table = RecordsTable(({"id": "1", "title": "a|b"},), ("id", "title"))
    assert table._repr_markdown_() == "| id | title |\n|---|---|\n| 1 | a\\|b |\n"
    assert list(table) == [{"id": "1", "title": "a|b"}] and len(table) == 1

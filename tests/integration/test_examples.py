"""The example notebooks, run by a real Jupyter kernel (nbclient, ipykernel) against the emulator: their
tables are the ones asyncdl's own API makes of the same server, their downloads are there and verified,
and the mirror's progress is one block of the cell, updated in place."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from asyncdl import Config, Selection, records_table
from asyncdl.emulator import EmulatorConfig, RunningEmulator
from asyncdl.emulator.dataset import IODP_OWNER, DatasetSpec

Start = Callable[..., RunningEmulator]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXTRACT = r"Expedition\s(?P<expedition>[A-Z]?\d{3}[A-Z]?)\s(?P<analysis>.+)"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def server(start_emulator: Start) -> RunningEmulator:
    return start_emulator(EmulatorConfig(rate_limits=False, dataset=DatasetSpec(records=60, iodp_fraction=0.6)))


def run_notebook(name: str, folder: Path, **parameters: str) -> list[Any]:
    """Execute examples/NAME with its parameters cell set, in ``folder``; its code cells, run."""
    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    for key in parameters:
        assert f"{key} = " in cell.source, key  # the notebook has this parameter
    cell.source += "\n" + "\n".join(f"{key} = {value!r}" for key, value in parameters.items())
    client = NotebookClient(notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()
    return [c for c in notebook.cells if c.cell_type == "code"]


def shown(cell: Any) -> str:
    """What a cell shows: its results and displays as text."""
    return "\n".join(str(o.get("data", {}).get("text/plain", o.get("text", ""))) for o in cell.outputs)


def result(cell: Any) -> str:
    """The cell's value, as the notebook shows it (its last expression)."""
    return next(str(o["data"]["text/plain"]) for o in cell.outputs if o.output_type == "execute_result")


def test_the_iodp_notebook_makes_the_seed_tables_and_downloads_alkalinity(server: RunningEmulator,
                                                                         tmp_path: Path) -> None:
    cells = run_notebook("iodp.ipynb", tmp_path, BASE_URL=server.url, DEST="alk")
    config, owner = Config(base_url=server.url), Selection(owner=IODP_OWNER)
    expected = records_table(owner, config, extract=EXTRACT, columns="id,expedition,title,doi,conceptdoi",
                             sort="expedition,conceptdoi,doi,title").to_pandas()
    by_expedition = result(cells[2])
    assert str(expected.iloc[0]["doi"]) in by_expedition and str(expected.iloc[-1]["doi"]) in by_expedition
    assert by_expedition.index(str(expected.iloc[0]["doi"])) < by_expedition.index(str(expected.iloc[-1]["doi"]))
    analyses = records_table(owner, config, extract=EXTRACT, group_by="analysis", sort="analysis").to_pandas()
    assert all(name[:20] in shown(cells[3]) for name in analyses["analysis"].head(5))
    ok, failed = (int(part) for part in result(cells[4]).strip("()").split(","))
    alkalinity = records_table(Selection(owner=IODP_OWNER, title_regex="Alkalinity"), config).to_pandas()
    assert ok == int(alkalinity["files"].sum()) > 0 and failed == 0
    with (tmp_path / "alk" / "manifest.csv").open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == ok
    for row in rows:
        digest = hashlib.md5((tmp_path / "alk" / row["path"]).read_bytes()).hexdigest()
        assert row["md5"] == digest and row["state"] == "done", row
    progress = [o for o in cells[4].outputs if o.output_type == "display_data"]
    assert len(progress) == 1 and f"files {ok}/{ok}" in progress[0]["data"]["text/plain"]  # in place, final
    assert not [o for o in cells[4].outputs if o.output_type == "stream"]  # nothing else floods the cell


def test_the_nfdi4bioimage_notebook_writes_the_downloads_csv(server: RunningEmulator, tmp_path: Path) -> None:
    cells = run_notebook("nfdi4bioimage.ipynb", tmp_path, BASE_URL=server.url, OUTPUT_CSV="downloads.csv")
    expected = records_table(Selection(community="nfdi4bioimage"), Config(base_url=server.url),
                             columns="url,downloads", sort="-downloads")
    assert (tmp_path / "downloads.csv").read_text(encoding="utf-8") == expected.to_csv()
    assert len(expected) > 0
    count, total = (int(part) for part in result(cells[2]).strip("()").split(","))
    assert count == len(expected) and total == sum(int(row["downloads"]) for row in expected)

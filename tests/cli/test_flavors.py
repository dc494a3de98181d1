"""The commands end to end, as a user runs them (subprocesses), against both of the emulator's flavors: Zenodo
and a stock InvenioRDM (native JSON, 10-character ids, relative parent redirects, native query fields, no page
caps). asyncdl is never told which it talks to."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from asyncdl.emulator import Dataset, EmulatorConfig, FileSpec, RunningEmulator
from asyncdl.emulator.flavor import BY_NAME, FLAVORS, FlavorName
from tests.datasets import many, record

Start = Callable[..., RunningEmulator]


def dataset() -> Dataset:
    return Dataset([
        record(11, concept=10, title="IODP Expedition 374 Alkalinity and pH", created="2019-08-10",
               files={"a.txt": b"alpha\n", "dir/b c.csv": b"x,y\n1,2\n"}, owners=("88403",), communities=("iodp",)),
        record(21, concept=20, title="Microscopy images v1", created="2021-03-01", owners=("5",),
               communities=("nfdi4bioimage",), files={"img.tif": b"v1 image"}),
        record(22, concept=20, title="Microscopy images v2", created="2021-06-01", version=1, owners=("5",),
               communities=("nfdi4bioimage",), files={"img.tif": b"v2 image!"}),
        record(31, concept=30, title="Closed record", access="restricted", owners=("88403",)),
        record(41, concept=40, title="Files closed", access="files-restricted", owners=("88403",)),
    ])


@pytest.fixture(params=FLAVORS)
def flavor(request: pytest.FixtureRequest) -> FlavorName:
    return cast(FlavorName, request.param)


def start(start_emulator: Start, flavor: FlavorName) -> RunningEmulator:
    return start_emulator(EmulatorConfig(flavor=flavor, rate_limits=False), dataset=dataset())


def pid(flavor: FlavorName, number: int) -> str:
    """The id the instance shows for the dataset's record ``number``."""
    return BY_NAME[flavor].public_id(number)


def asyncdl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "asyncdl", *args], capture_output=True, text=True, timeout=120)


def test_get_by_id_url_and_concept(start_emulator: Start, flavor: FlavorName, tmp_path: Path) -> None:
    emu = start(start_emulator, flavor)
    result = asyncdl("get", "--base-url", emu.url, pid(flavor, 11), f"{emu.url}/records/{pid(flavor, 21)}",
                     pid(flavor, 20), "-o", str(tmp_path), "--archive", "never")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / pid(flavor, 11) / "a.txt").read_bytes() == b"alpha\n"
    assert (tmp_path / pid(flavor, 11) / "dir" / "b c.csv").read_bytes() == b"x,y\n1,2\n"
    assert (tmp_path / pid(flavor, 21) / "img.tif").read_bytes() == b"v1 image"
    assert (tmp_path / pid(flavor, 22) / "img.tif").read_bytes() == b"v2 image!"  # the concept's latest


def test_mirror_owner_community_and_versions(start_emulator: Start, flavor: FlavorName, tmp_path: Path) -> None:
    emu = start(start_emulator, flavor)
    owner = asyncdl("mirror", "--base-url", emu.url, "--owner", "88403", str(tmp_path / "o"), "--archive", "never")
    assert owner.returncode == 5, owner.stderr  # record 41's files are restricted: told, and exit 5
    assert sorted(p.name for p in (tmp_path / "o").iterdir() if p.is_dir() and p.name[0] != ".") == [pid(flavor, 11)]
    assert f"not downloaded: record {pid(flavor, 41)}" in owner.stderr
    community = asyncdl("mirror", "--base-url", emu.url, "--community", "nfdi4bioimage", "--all-versions",
                        str(tmp_path / "c"), "--archive", "never")
    assert community.returncode == 0, community.stderr
    assert (tmp_path / "c" / pid(flavor, 21) / "img.tif").read_bytes() == b"v1 image"
    assert (tmp_path / "c" / pid(flavor, 22) / "img.tif").read_bytes() == b"v2 image!"


def test_list_a_query_as_csv(start_emulator: Start, flavor: FlavorName) -> None:
    emu = start(start_emulator, flavor)
    result = asyncdl("list", "--base-url", emu.url, "--query", "metadata.title:Microscopy", "--all-versions",
                     "--columns", "id,title,doi", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sorted(r["id"] for r in rows) == sorted([pid(flavor, 21), pid(flavor, 22)])
    assert all(r["doi"] for r in rows)


def test_status_and_verify_after_a_mirror(start_emulator: Start, flavor: FlavorName, tmp_path: Path) -> None:
    emu = start(start_emulator, flavor)
    assert asyncdl("mirror", "--base-url", emu.url, pid(flavor, 11), str(tmp_path)).returncode == 0
    status = asyncdl("status", str(tmp_path), "--format", "json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["states"]["done"]["files"] == 2
    assert asyncdl("verify", str(tmp_path)).returncode == 0
    (tmp_path / pid(flavor, 11) / "a.txt").write_bytes(b"ALPHA\n")
    bad = asyncdl("verify", str(tmp_path))
    assert bad.returncode == 1 and "a.txt" in bad.stdout + bad.stderr
    repaired = asyncdl("verify", "--repair", "--base-url", emu.url, str(tmp_path))
    assert repaired.returncode == 0, repaired.stderr
    assert (tmp_path / pid(flavor, 11) / "a.txt").read_bytes() == b"alpha\n"


def test_get_by_doi_through_a_resolver(start_emulator: Start, flavor: FlavorName, tmp_path: Path) -> None:
    """A Zenodo DOI names its record directly; another instance's DOI is followed from the resolver (here the
    emulator's own /doi route) to the landing page, whose Signposting linkset names the record."""
    emu = start(start_emulator, flavor)
    doi = BY_NAME[flavor].doi(11)
    env = {**os.environ, "ASYNCDL_DOI_RESOLVER": f"{emu.url}/doi"}
    result = subprocess.run([sys.executable, "-m", "asyncdl", "get", "--base-url", emu.url, doi, "-o", str(tmp_path),
                             "--archive", "never"], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / pid(flavor, 11) / "a.txt").read_bytes() == b"alpha\n"
    assert emu.stats.requests["record"] >= 1


def test_a_stock_instance_is_paged_by_100_without_a_flag(start_emulator: Start, flavor: FlavorName) -> None:
    emu = start_emulator(EmulatorConfig(flavor=flavor, rate_limits=False), dataset=many(450))
    result = asyncdl("list", "--base-url", emu.url, "--query", "*", "--columns", "id", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 451
    pages = emu.stats.requests["search"]
    assert pages == (1 + 5 if flavor == "invenio" else 18)  # zenodo: 25 a page; stock: 25, then 100s once it shows


def test_a_stock_instance_on_s3_storage_with_multipart_checksums(start_emulator: Start, tmp_path: Path) -> None:
    """data.caltech.edu's case: a stock instance whose downloads are 302s to presigned URLs, files stated by
    S3 multipart ETags, a token in use, the record named by its URL (no --base-url). Every file verified by
    its multipart checksum, and the store never saw a credential."""
    files = [FileSpec(key="big.bin", size=3 * 1_048_576 + 17, offset=5, file_id="f-big", checksum_kind="multipart",
                      part_size=1_048_576),
             FileSpec(key="small.csv", size=2000, offset=9, file_id="f-small", checksum_kind="multipart",
                      part_size=1_048_576)]
    spec = dataclasses.replace(record(11, concept=10, owners=("88403",), access="files-restricted"), files=files)
    emu = start_emulator(EmulatorConfig(flavor="invenio", presign=True, rate_limits=False), dataset=Dataset([spec]))
    config = tmp_path / "asyncdl.toml"  # the instance's token, configured for its host alone
    config.write_text(f'[hosts."{emu.url}"]\ntoken_env = "CALTECH_TOKEN"\n', encoding="utf-8")
    env = {**os.environ, "CALTECH_TOKEN": "emulator-token"}
    result = subprocess.run([sys.executable, "-m", "asyncdl", "get", f"{emu.url}/records/{pid('invenio', 11)}",
                             "--config", str(config), "-o", str(tmp_path / "out"), "--archive", "never",
                             "--segments", "2", "-v"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    for spec_file in files:
        data = (tmp_path / "out" / pid("invenio", 11) / spec_file.key).read_bytes()
        assert hashlib.md5(data).hexdigest() == emu.dataset.file_md5(spec_file)
    assert "multipart checksum verified (4 parts" in result.stderr
    assert emu.store_stats.credentials_seen == 0 and emu.store_stats.requests >= 2


def test_zenodo_field_names_on_a_stock_instance_are_told_not_silently_empty(start_emulator: Start,
                                                                             flavor: FlavorName) -> None:
    emu = start(start_emulator, flavor)
    result = asyncdl("list", "--base-url", emu.url, "--query", "owners:88403", "--columns", "id", "--format", "csv")
    assert result.returncode == (0 if flavor == "zenodo" else 4), result.stderr  # 4: nothing matched
    if flavor == "zenodo":  # Zenodo rewrites owners: to its native field
        assert sorted(result.stdout.splitlines()[1:]) == ["11", "41"] and "field names" not in result.stderr
    else:
        assert result.stdout.splitlines()[1:] == []
        assert ("is a stock InvenioRDM instance, which does not know Zenodo's field names (for owners: use "
                "parent.access.owned_by.user: or --owner)") in result.stderr

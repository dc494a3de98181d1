"""A changed --layout on an existing DEST: refused with one line naming --relayout, shown by --dry-run
--relayout, and with --relayout the files are renamed to their new places (no request, nothing kept twice)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from tests.cli.test_inputs import asyncdl, one_line
from tests.datasets import record

Start = Callable[..., RunningEmulator]
NEW = "{year}/{id}/{key}"
FILES: dict[str, bytes | int] = {"a.csv": b"alkalinity\n", "deep/b.txt": b"b" * 5000, "c.tif": 3000}


def dataset() -> Dataset:
    return Dataset([record(11, title="Alkalinity", created="2019-05-01", files=FILES),
                    record(12, title="Salinity", created="2021-02-01", files={"s.csv": b"salt\n"})])


def files_under(dest: Path) -> dict[str, bytes]:
    return {str(p.relative_to(dest)): p.read_bytes() for p in sorted(dest.rglob("*"))
            if p.is_file() and ".asyncdl" not in p.parts and p.name != "manifest.csv"}


def content_requests(emu: RunningEmulator) -> int:
    return sum(n for kind, n in emu.stats.requests.items() if kind not in ("search", "record"))


def mirrored(start_emulator: Start, tmp_path: Path) -> tuple[RunningEmulator, Path, dict[str, bytes]]:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    dest = tmp_path / "m"
    first = asyncdl("mirror", "--base-url", emu.url, "--owner", "42", str(dest), "-q")
    assert first.returncode == 0, first.stderr
    before = files_under(dest)
    assert set(before) == {"11/a.csv", "11/deep/b.txt", "11/c.tif", "12/s.csv"}
    return emu, dest, before


def test_a_changed_layout_is_refused_with_one_line_naming_relayout(start_emulator: Start, tmp_path: Path) -> None:
    emu, dest, before = mirrored(start_emulator, tmp_path)
    sent = sum(emu.stats.requests.values())
    result = asyncdl("mirror", "--base-url", emu.url, "--owner", "42", str(dest), "--layout", NEW)
    assert result.returncode == 2
    assert one_line(result) == (f"error: DEST holds 4 files placed by --layout '{{id}}/{{key}}', not '{NEW}': add "
                                "--relayout to move them to the new places (renamed, nothing downloaded), or run "
                                "with --layout '{id}/{key}'")
    assert files_under(dest) == before and sum(emu.stats.requests.values()) == sent
    dry = asyncdl("mirror", "--base-url", emu.url, "--owner", "42", str(dest), "--layout", NEW, "--dry-run")
    assert dry.returncode == 2 and "add --relayout" in one_line(dry)


def test_dry_run_with_relayout_lists_the_moves_and_changes_nothing(start_emulator: Start, tmp_path: Path) -> None:
    emu, dest, before = mirrored(start_emulator, tmp_path)
    result = asyncdl("mirror", "--base-url", emu.url, "--owner", "42", str(dest), "--layout", NEW, "--dry-run",
                     "--relayout", "-q")
    assert result.returncode == 0, result.stderr
    actions = {line.split("\t")[0]: line.split("\t")[3] for line in result.stdout.splitlines()}
    assert actions == {"2019/11/a.csv": "move", "2019/11/deep/b.txt": "move", "2019/11/c.tif": "move",
                       "2021/12/s.csv": "move"}
    assert "4 to move to the new layout (7.83 KiB)" in result.stderr
    assert files_under(dest) == before


def test_relayout_renames_every_file_without_a_request(start_emulator: Start, tmp_path: Path) -> None:
    emu, dest, before = mirrored(start_emulator, tmp_path)
    sent = content_requests(emu)
    result = asyncdl("mirror", "--base-url", emu.url, "--owner", "42", str(dest), "--layout", NEW, "--relayout",
                     "--progress", "plain")
    assert result.returncode == 0, result.stderr
    assert "done: 0 ok, 4 already there (4 moved to the new layout), 0 failed; 0 B" in result.stderr
    assert content_requests(emu) == sent
    after = files_under(dest)
    assert after == {f"{'2019' if name.startswith('11/') else '2021'}/{name}": data for name, data in before.items()}
    assert not (dest / "11").exists() and not (dest / "12").exists()  # the emptied folders went too
    assert "2019/11/deep/b.txt" in (dest / "manifest.csv").read_text()
    verify = asyncdl("verify", str(dest))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    again = asyncdl("mirror", "--base-url", emu.url, "--owner", "42", str(dest), "--layout", NEW, "--progress",
                    "plain")
    assert again.returncode == 0 and "done: 0 ok, 4 already there, 0 failed" in again.stderr
    assert content_requests(emu) == sent
    back = asyncdl("mirror", "--base-url", emu.url, "--owner", "42", str(dest), "-q")
    assert back.returncode == 2 and f"placed by --layout '{NEW}', not '{{id}}/{{key}}'" in one_line(back)


def test_a_file_in_the_way_is_not_overwritten(start_emulator: Start, tmp_path: Path) -> None:
    emu, dest, before = mirrored(start_emulator, tmp_path)
    (dest / "2021" / "12").mkdir(parents=True)
    (dest / "2021" / "12" / "s.csv").write_bytes(b"mine\n")  # a file of the user's where one is to go
    result = asyncdl("mirror", "--base-url", emu.url, "--owner", "42", str(dest), "--layout", NEW, "--relayout",
                     "--progress", "plain")
    assert result.returncode == 0, result.stderr
    assert "3 moved to the new layout" in result.stderr
    after = files_under(dest)
    assert after["2021/12/s.csv"] == before["12/s.csv"]  # checked, found wrong, fetched: the right bytes
    assert after["12/s.csv"] == before["12/s.csv"]  # the old copy stays where the move could not go

"""Wrong input as people type it: one line and its exit code (2 usage, 3 local), never a traceback, nothing
written or sent; brace globs work as rclone users expect."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from tests.datasets import record
from tests.http_helpers import free_port

Start = Callable[..., RunningEmulator]


def dataset() -> Dataset:
    return Dataset([record(11, concept=10, title="IODP Expedition 374 Alkalinity",
                           files={"a.csv": b"a\n", "b.txt": b"b\n", "c.tif": b"c\n"})])


def asyncdl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "asyncdl", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line that says what is wrong (click's usage reminder above a usage error aside)."""
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not line.startswith(("Usage: ", "Try '"))]
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(("args", "code", "words"), [
    (["list", "--query", "*", "--title-regex", "(Alk"], 2, "error: invalid title regex '(Alk'"),
    (["list", "--query", "*", "--extract", "Expedition (?P<x>"], 2, "error: invalid --extract regex"),
    (["list", "--query", "*", "--extract", "Expedition"], 2, "error: --extract needs named groups"),
    (["mirror", "--query", "*", "DEST", "--include", "[abc"], 2, "must be a glob with every '[' closed"),
    (["mirror", "--query", "*", "DEST", "--exclude", "*.{csv"], 2, "must be a glob whose braces { } pair up"),
])
def test_bad_patterns_are_one_line_before_any_request(start_emulator: Start, tmp_path: Path, args: list[str],
                                                      code: int, words: str) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    args = [str(tmp_path / "m") if a == "DEST" else a for a in args]
    result = asyncdl(args[0], "--base-url", emu.url, *args[1:])
    assert result.returncode == code
    assert words in one_line(result)
    assert sum(emu.stats.requests.values()) == 0 and not (tmp_path / "m").exists()


def test_a_bad_glob_in_a_variable_or_a_config_file_is_the_same_one_line(tmp_path: Path) -> None:
    from_env = asyncdl("mirror", "--query", "*", str(tmp_path / "m"), env={"ASYNCDL_INCLUDE": "*.csv,[x"})
    assert from_env.returncode == 2 and "ASYNCDL_INCLUDE must be a glob with every '[' closed" in one_line(from_env)
    config = tmp_path / "c.toml"
    config.write_text('[files]\ninclude = ["*.{csv"]\n', encoding="utf-8")
    from_file = asyncdl("mirror", "--config", str(config), "--query", "*", str(tmp_path / "m"))
    assert from_file.returncode == 2 and "files.include" in one_line(from_file)
    assert "braces { } pair up" in from_file.stderr and not (tmp_path / "m").exists()


@pytest.mark.parametrize("where", ["flag", "variable"])
def test_brace_globs_select_as_rclone_users_expect(start_emulator: Start, tmp_path: Path, where: str) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    flags, env = (["--include", "*.{csv,txt}"], None) if where == "flag" else ([], {"ASYNCDL_INCLUDE": "*.{csv,txt}"})
    result = asyncdl("get", "--base-url", emu.url, "11", "-o", str(tmp_path), "--archive", "never", *flags, env=env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "11").iterdir()) == ["a.csv", "b.txt"]


def test_a_destination_under_a_file_is_a_local_problem_in_one_line(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    for command in (["mirror", "--base-url", emu.url, "11", str(blocker / "m")],
                    ["get", "--base-url", emu.url, "11", "-o", str(blocker / "m")]):
        result = asyncdl(*command)
        assert result.returncode == 3
        assert one_line(result) == f"error: cannot use {blocker / 'm'}: Not a directory"


def test_nothing_listening_is_told_in_words_with_each_retry(tmp_path: Path) -> None:
    port = free_port()
    result = asyncdl("mirror", "--base-url", f"http://127.0.0.1:{port}", "11", str(tmp_path / "m"),
                     "--progress", "plain")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    retries = [found[1] for line in lines if (found := re.fullmatch(
        rf"\S+ \S+ retrying (\d)/3 in \d+(\.\d)? s: cannot connect to 127\.0\.0\.1:{port}: connection refused", line))]
    assert retries == ["1", "2", "3"]  # four tries: three retried (each with its number and wait), the last reported
    assert re.fullmatch(rf"error: cannot connect to 127\.0\.0\.1:{port}: connection refused \(4 tries over \d+ s\); "
                        r"check --base-url and the network", lines[-1]), lines[-1]
    assert "ClientConnector" not in result.stderr and "Traceback" not in result.stderr


def test_a_host_name_that_does_not_resolve_is_told_in_words(tmp_path: Path) -> None:
    result = asyncdl("list", "--base-url", "http://no-such-host.invalid", "--owner", "1")
    assert result.returncode == 1
    assert one_line(result).startswith("error: cannot find the host no-such-host.invalid: ")
    assert "check --base-url and the network" in result.stderr


@pytest.mark.parametrize(("args", "words"), [
    (["mirror", "1031"], "Error: DEST is missing: 1031 was taken as the destination; name the records, then where "
                         "they go, e.g. asyncdl mirror 1031 ./mirror"),
    (["mirror", "--query", "x", "DEST", "-q", "-v"], "Error: -q (only errors and the final line) and -v (every "
                                                     "file) contradict each other: choose one"),
    (["list", "--query", "x", "-o", "out.xlsx"], "Error: cannot tell a format from the extension of out.xlsx: name "
                                                 "it .csv, .json, .jsonl, .md or .parquet, or give --format"),
])
def test_mistakes_on_the_command_line_are_named(tmp_path: Path, args: list[str], words: str) -> None:
    args = [str(tmp_path / "m") if a == "DEST" else a for a in args]
    result = subprocess.run([sys.executable, "-m", "asyncdl", *args], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result) == words
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_selection_that_matches_nothing_says_so_and_exits_4(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    listed = asyncdl("list", "--base-url", emu.url, "--owner", "12345", "--format", "csv")
    assert listed.returncode == 4 and "nothing: the selection matched no records" in listed.stderr
    assert "0 rows" in listed.stderr
    mirrored = asyncdl("mirror", "--base-url", emu.url, "--query", "nothing-like-this", str(tmp_path / "m"),
                       "--progress", "plain")
    assert mirrored.returncode == 4
    assert mirrored.stderr.splitlines()[-1] == "nothing: the selection matched no records"


def test_filters_that_leave_no_file_say_so_and_exit_4(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    result = asyncdl("mirror", "--base-url", emu.url, "11", str(tmp_path / "m"), "--include", "*.nomatch",
                     "--progress", "plain", "--archive", "never")
    assert result.returncode == 4
    lines = result.stderr.splitlines()
    assert "0 failed, 3 filtered out;" in lines[-2]  # the final line counts the files filtered out
    assert lines[-1] == ("nothing: all 3 files of the selection's 1 record were filtered out (--include, "
                         "--exclude, --max-file-size)")


def test_a_mirror_complete_but_for_restricted_records_exits_5_and_names_them(start_emulator: Start,
                                                                             tmp_path: Path) -> None:
    records = [record(11, concept=10, files={"a.csv": b"a\n"}, owners=("7",)),
               record(21, concept=20, access="files-restricted", owners=("7",))]
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=Dataset(records))
    first = asyncdl("mirror", "--base-url", emu.url, "--owner", "7", str(tmp_path), "--progress", "plain")
    assert first.returncode == 5, first.stderr
    assert "not downloaded: record 21: files not accessible (restricted)" in first.stderr
    again = asyncdl("mirror", "--base-url", emu.url, "--owner", "7", str(tmp_path), "--progress", "plain")
    assert again.returncode == 5 and "1 already there" in again.stderr  # a service would not restart on it
    status = asyncdl("status", str(tmp_path))
    assert status.returncode == 0 and "not downloadable: record 21: files not accessible (restricted)" in status.stdout
    as_json = json.loads(asyncdl("status", str(tmp_path), "--format", "json").stdout)
    assert as_json["unavailable"] == [{"record": "21", "reason": "files not accessible (restricted)"}]
    assert as_json["runs"][0]["outcome"] == "complete except unavailable"


def test_a_run_that_brings_no_file_leaves_no_stub_destination(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    missing = asyncdl("get", "--base-url", emu.url, "999999", "-o", str(tmp_path / "g"))
    assert missing.returncode == 2 and "no record 999999" in missing.stderr
    empty = asyncdl("mirror", "--base-url", emu.url, "--owner", "12345", str(tmp_path / "m"))
    assert empty.returncode == 4
    assert not (tmp_path / "g").exists() and not (tmp_path / "m").exists()
    (tmp_path / "kept").mkdir()  # a folder that was there before is the user's: left alone
    assert asyncdl("mirror", "--base-url", emu.url, "--owner", "12345", str(tmp_path / "kept")).returncode == 4
    assert (tmp_path / "kept").is_dir()


@pytest.mark.parametrize("layout", ["../{key}", "/abs/{key}", "{id}/../{key}", "./{key}"])
def test_a_layout_that_leaves_dest_is_refused_not_quietly_neutralised(tmp_path: Path, layout: str) -> None:
    result = asyncdl("mirror", "--query", "*", str(tmp_path / "m"), "--layout", layout)
    assert result.returncode == 2
    assert f"the layout {layout!r} names a place outside DEST or a '.'/'..' folder" in one_line(result)
    assert not (tmp_path / "m").exists()


def test_verify_repair_after_verify_calls_a_missing_file_missing(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    assert asyncdl("get", "--base-url", emu.url, "11", "-o", str(tmp_path), "--archive", "never").returncode == 0
    (tmp_path / "11" / "b.txt").unlink()
    first = asyncdl("verify", str(tmp_path))
    assert first.returncode == 1 and "missing: 11/b.txt" in first.stderr
    repaired = asyncdl("verify", "--repair", "--base-url", emu.url, str(tmp_path))
    assert repaired.returncode == 0, repaired.stderr
    assert "missing: 11/b.txt" in repaired.stderr and "mismatch" not in repaired.stderr.split("verified")[0]
    assert "verified 3 files: 2 ok, 0 mismatched, 1 missing, 1 repaired" in repaired.stderr
    assert (tmp_path / "11" / "b.txt").read_bytes() == b"b\n"


def test_inaccessible_records_are_told_once_and_grouped_when_many(start_emulator: Start, tmp_path: Path) -> None:
    records = [record(11, concept=10, files={"a.csv": b"a\n"}, owners=("7",))]
    records += [record(21 + 2 * i, concept=20 + 2 * i, access="files-restricted", owners=("7",)) for i in range(7)]
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=Dataset(records))
    plain = asyncdl("mirror", "--base-url", emu.url, "--owner", "7", str(tmp_path / "a"), "--progress", "plain")
    assert plain.returncode == 5
    grouped = [line for line in plain.stderr.splitlines() if "restricted" in line]
    assert len(grouped) == 1 and grouped[0].startswith("not downloaded: 7 records: files not accessible (restricted): ")
    assert grouped[0].endswith(", ... (-v for all)")
    every = asyncdl("mirror", "--base-url", emu.url, "--owner", "7", str(tmp_path / "b"), "--progress", "plain", "-v")
    named = [line for line in every.stderr.splitlines() if line.startswith("not downloaded: record ")]
    assert len(named) == 7 and every.stderr.count("not downloaded: record 21:") == 1


def test_identifiers_from_a_file_or_standard_input(start_emulator: Start, tmp_path: Path) -> None:
    records = [record(11, concept=10, files={"a.csv": b"a\n"}), record(21, concept=20, files={"b.csv": b"b\n"})]
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=Dataset(records))
    listing = tmp_path / "ids.txt"
    listing.write_text(f"# the records I need\n11\n\n{emu.url}/records/21\n", encoding="utf-8")
    got = asyncdl("get", "--base-url", emu.url, "-i", str(listing), "-o", str(tmp_path / "g"), "--archive", "never")
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "g" / "11" / "a.csv").is_file() and (tmp_path / "g" / "21" / "b.csv").is_file()
    piped = subprocess.run([sys.executable, "-m", "asyncdl", "list", "--base-url", emu.url, "-i", "-", "--columns",
                            "id", "--format", "csv"], input="21\n11\n", capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and piped.stdout.split() == ["id", "21", "11"]
    sent = sum(emu.stats.requests.values())
    bad = subprocess.run([sys.executable, "-m", "asyncdl", "list", "--base-url", emu.url, "-i", "-"],
                         input="11\nnot an id!\n", capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "<stdin>, line 2: not a record id" in one_line(bad)
    assert sum(emu.stats.requests.values()) == sent  # the bad list sent nothing


def test_a_file_url_downloads_that_file_alone(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    for number, url in enumerate([f"{emu.url}/records/11/files/b.txt?download=1",
                                  f"{emu.url}/api/records/11/files/b.txt/content"]):
        result = asyncdl("get", url, "-o", str(tmp_path / str(number)), "--progress", "plain")
        assert result.returncode == 0, result.stderr
        assert [p.name for p in (tmp_path / str(number) / "11").iterdir()] == ["b.txt"]
        assert "2 filtered out" in result.stderr
    missing = asyncdl("get", f"{emu.url}/records/11/files/nope.bin", "-o", str(tmp_path / "x"), "--progress", "plain")
    assert missing.returncode == 4
    assert "record 11 has no file 'nope.bin'" in missing.stderr and not (tmp_path / "x").exists()


def test_record_slash_key_downloads_that_file_alone_even_of_a_concept(start_emulator: Start, tmp_path: Path) -> None:
    records = [record(11, concept=10, files={"a.csv": b"old\n"}, version=1),
               record(12, concept=10, files={"a.csv": b"new\n", "deep/b.txt": b"b\n", "c.tif": b"c\n"}, version=2)]
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=Dataset(records))
    got = asyncdl("get", "--base-url", emu.url, "12/deep/b.txt", "-o", str(tmp_path / "a"), "--progress", "plain")
    assert got.returncode == 0, got.stderr
    assert sorted(str(p.relative_to(tmp_path / "a")) for p in (tmp_path / "a" / "12").rglob("*") if p.is_file()) \
        == ["12/deep/b.txt"]
    assert "2 filtered out" in got.stderr
    concept = asyncdl("get", "--base-url", emu.url, "10/a.csv", "-o", str(tmp_path / "b"), "-q")
    assert concept.returncode == 0, concept.stderr
    assert (tmp_path / "b" / "12" / "a.csv").read_bytes() == b"new\n"  # the concept's latest version's file
    assert [p.name for p in (tmp_path / "b" / "12").iterdir()] == ["a.csv"]


def test_get_without_output_keeps_everything_in_the_record_folder(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    work = tmp_path / "work"
    work.mkdir()

    def get(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "asyncdl", "get", "--base-url", emu.url, *args],
                              capture_output=True, text=True, timeout=60, cwd=work)

    first = get("11", "-q")
    assert first.returncode == 0, first.stderr
    assert [p.name for p in work.iterdir()] == ["11"]  # no .asyncdl/ or manifest.csv beside it
    assert {p.name for p in (work / "11").iterdir()} == {"a.csv", "b.txt", "c.tif", ".asyncdl", "manifest.csv"}
    again = get("11", "--progress", "plain")
    assert again.returncode == 0 and "0 ok, 3 already there" in again.stderr
    assert asyncdl("status", str(work / "11")).returncode == 0
    several = get("11", "12")
    assert several.returncode == 2
    assert one_line(several) == ("Error: get of 2 records needs -o DEST, the folder for them all (one record alone "
                                 "goes into ./RECORD/)")
    assert get("--owner", "42").returncode == 2 and [p.name for p in work.iterdir()] == ["11"]

"""Shards as a cluster scheduler runs them: N `asyncdl mirror` processes at once on one destination."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, RunningEmulator
from tests.datasets import many, record

Start = Callable[..., RunningEmulator]
IDS = range(101, 131, 2)  # 15 records


def dataset(size: int = 0) -> Dataset:
    """15 records of one to three files (``size`` bytes each, else small sizes that differ)."""
    def files(rid: int) -> dict[str, bytes | int]:
        return {f"part{j}/f{j}.dat" if j else "a.txt": size or 1000 + 37 * rid + j for j in range(1 + rid % 3)}

    return Dataset([record(rid, concept=rid - 1, files=files(rid)) for rid in IDS])


def command(emu: RunningEmulator, dest: Path, *extra: str) -> list[str]:
    """A shard's command line; one request per file (what most of these tests count) unless ``extra`` says
    otherwise."""
    archive = () if "--archive" in extra else ("--archive", "never")
    return [sys.executable, "-m", "asyncdl", "mirror", "--base-url", emu.url, "--query", "*", str(dest),
            "--progress", "none", *archive, *extra]


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "XDG_CONFIG_HOME": "/nonexistent", **(env or {})})


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "XDG_CONFIG_HOME": "/nonexistent", **(env or {})})


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=300)
    return process.returncode, stderr


def expected(emu: RunningEmulator) -> dict[str, str]:
    return {f"{r.id}/{f.key}": emu.dataset.file_md5(f) for r in emu.dataset.records.values() for f in r.files}


def sizes(emu: RunningEmulator) -> dict[str, int]:
    return {f"{r.id}/{f.key}": f.size for r in emu.dataset.records.values() for f in r.files}


def on_disk(dest: Path) -> dict[str, str]:
    return {p.relative_to(dest).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in dest.rglob("*")
            if p.is_file() and ".asyncdl" not in p.parts and p.name != "manifest.csv"}


def journal_files(dest: Path, shard: str) -> dict[str, str]:
    """path -> state in one shard's journal (nothing while it is being created)."""
    with sqlite3.connect(dest / ".asyncdl" / f"journal-{shard}.sqlite") as db:
        try:
            return dict(db.execute("SELECT path, state FROM files"))
        except sqlite3.OperationalError:  # no such table yet
            return {}


@pytest.mark.parametrize("archive", ["never", "auto"])
def test_three_shards_at_once_mirror_the_whole_selection_once(start_emulator: Start, tmp_path: Path,
                                                               archive: str) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    dest = tmp_path / "mirror"
    shards = [start(command(emu, dest, "--shard", f"{k}/3", "--archive", archive)) for k in (1, 2, 3)]
    for process in shards:
        code, stderr = finish(process)
        assert code == 0, stderr
    want = expected(emu)
    assert on_disk(dest) == want  # the union is the whole selection, every file verified
    parts = [journal_files(dest, f"{k}-of-3") for k in (1, 2, 3)]
    assert all(parts) and sum(len(p) for p in parts) == len(want)  # each shard had work; none shared a file
    assert set().union(*parts) == set(want) and all(set(p.values()) == {"done"} for p in parts)
    for part in parts:  # a record's files stay in one shard
        records = {path.split("/")[0] for path in part}
        assert not any(path.split("/")[0] in records for other in parts if other is not part for path in other)
    served = emu.stats.snapshot()
    print(f"3 shards: {served['requests']} requests for {len(want)} files")
    if archive == "never":
        assert served["requests"]["content"] == len(want)  # no file fetched twice
        assert served["file_bytes"] == sizes(emu)
    else:  # records of three files came as one archive each, the others file by file: each once
        whole = [r for r in emu.dataset.records.values() if len(r.files) >= 3]
        assert whole and served["requests"]["archive"] == len(whole)
        assert served["requests"]["content"] == len(want) - sum(len(r.files) for r in whole)
        alone = {k: v for k, v in sizes(emu).items() if int(k.split("/")[0]) not in {r.id for r in whole}}
        assert {k: v for k, v in served["file_bytes"].items() if not k.endswith("files-archive")} == alone
    assert served["requests"]["search"] == 1  # one crawl (one page) for the three shards: the others read it

    status = run([sys.executable, "-m", "asyncdl", "status", str(dest), "--format", "json"])
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["states"] == {"done": {"files": len(want), "bytes": sum(sizes(emu).values())}}
    assert sorted((s["shard"], s["files"], s["done"], s["last_outcome"]) for s in report["shards"]) == [
        (f"{k}/3", len(parts[k - 1]), len(parts[k - 1]), "complete") for k in (1, 2, 3)]
    table = run([sys.executable, "-m", "asyncdl", "status", str(dest)])
    assert f"total │ {len(want)} " in table.stdout and "(3 journals)" in table.stdout
    verify = run([sys.executable, "-m", "asyncdl", "verify", str(dest)])
    assert verify.returncode == 0 and f"verified {len(want)} files: {len(want)} ok" in verify.stderr
    with (dest / "manifest.csv").open() as stream:  # written by the last shard, from every journal
        manifest = {row["path"]: row["state"] for row in csv.DictReader(stream)}
    assert manifest == dict.fromkeys(want, "done")


def test_a_shard_under_slurm_or_kubernetes_picks_its_partition(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    explicit = run(command(emu, tmp_path / "explicit", "--shard", "2/3"))
    assert explicit.returncode == 0, explicit.stderr
    chosen = on_disk(tmp_path / "explicit")
    assert 0 < len(chosen) < len(expected(emu))
    # sbatch --array=5-7: the second task is shard 2 of 3
    array = {"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_MAX": "7",
             "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_JOB_ID": "4242"}
    slurm = run(command(emu, tmp_path / "slurm", "--progress", "plain"), env=array)
    assert slurm.returncode == 0, slurm.stderr
    assert on_disk(tmp_path / "slurm") == chosen
    assert slurm.stderr.startswith("shard 2/3 (from SLURM_ARRAY_TASK_ID=6 in an array of 3 from 5)")
    assert "rate share 0.333" in slurm.stderr and "done (shard 2/3):" in slurm.stderr
    assert (tmp_path / "slurm" / ".asyncdl" / "journal-2-of-3.sqlite").is_file()
    # a Kubernetes Indexed Job's pod with index 1 and the count in the environment
    pod = run(command(emu, tmp_path / "k8s"), env={"JOB_COMPLETION_INDEX": "1", "ASYNCDL_SHARD_COUNT": "3"})
    assert pod.returncode == 0, pod.stderr
    assert on_disk(tmp_path / "k8s") == chosen
    # an explicit --shard wins over the environment; 1/1 is the whole selection
    whole = run(command(emu, tmp_path / "whole", "--shard", "1/1"), env=array)
    assert whole.returncode == 0 and on_disk(tmp_path / "whole") == expected(emu)
    assert (tmp_path / "whole" / ".asyncdl" / "journal.sqlite").is_file()


def test_shard_usage_errors(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    cases = [
        (["--shard", "4/3"], {}, "shard 4/3 (from --shard 4/3) does not exist"),
        (["--shard", "two/3"], {}, "--shard takes K/N"),
        (["--shard", "1/3", "--shard-count", "4"], {}, "--shard 1/3 and a shard count of 4 disagree"),
        ([], {"JOB_COMPLETION_INDEX": "1"}, "JOB_COMPLETION_INDEX=1 but no shard count"),
        ([], {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "9",
              "SLURM_ARRAY_TASK_COUNT": "3"}, "cannot tell which shard SLURM_ARRAY_TASK_ID=4"),
        (["--shard", "1/2", "--layout", "{year}/{key}"], {}, "with --shard the layout must have {id} in a folder"),
        (["--rate-share", "3/2"], {}, "must be a fraction above 0 and at most 1 (e.g. 0.25 or 1/4), not '3/2'"),
    ]
    for extra, env, message in cases:
        result = run(command(emu, tmp_path / "out", *extra), env=env)
        assert result.returncode == 2 and message in result.stderr, (extra, result.stderr)
    assert emu.stats.snapshot()["total_requests"] == 0 and not (tmp_path / "out").exists()


def test_rate_share_is_one_over_n_unless_set(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    shares = {}
    for name, extra, env in [("default", [], {}), ("flag", ["--rate-share", "1/2"], {}),
                             ("env", [], {"ASYNCDL_RATE_SHARE": "0.8"})]:
        result = run(command(emu, tmp_path / name, "--shard", "1/4", "--dry-run", "--progress", "plain", *extra),
                     env=env)
        assert result.returncode == 0, result.stderr
        shares[name] = result.stderr.split("rate share ")[1].split()[0]
    assert shares == {"default": "0.25", "flag": "0.5", "env": "0.8"}


def test_rerun_fetches_nothing_and_an_interrupted_shard_resumes_alone(start_emulator: Start,
                                                                    tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False, faults=FaultConfig(bandwidth=1_000_000)),
                         dataset=dataset(size=1_500_000))
    dest = tmp_path / "mirror"
    shards = {k: start(command(emu, dest, "--shard", f"{k}/3", "--chunk-size", "64KiB", "--grace", "0"))
              for k in (1, 2, 3)}
    journal = dest / ".asyncdl" / "journal-2-of-3.sqlite"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # shard 2 has bytes of a file on disk: interrupt it there
        if journal.exists() and any(s == "partial" for s in journal_files(dest, "2-of-3").values()):
            break
        time.sleep(0.05)
    shards[2].send_signal(signal.SIGINT)
    assert finish(shards[2])[0] == 130
    for k in (1, 3):
        code, stderr = finish(shards[k])
        assert code == 0, stderr
    mine = journal_files(dest, "2-of-3")
    assert "partial" in mine.values()
    parts = {p.relative_to(dest).as_posix().removesuffix(".asyncdl-part"): p.stat().st_size
             for p in dest.rglob("*.asyncdl-part")}
    assert parts and set(parts) <= set(mine)  # shard 2's parts, left alone by the other shards' ends
    before = emu.stats.snapshot()["file_bytes"]

    again = {k: start(command(emu, dest, "--shard", f"{k}/3", "--progress", "plain")) for k in (1, 3, 2)}
    results = {k: finish(p) for k, p in again.items()}
    assert all(code == 0 for code, _ in results.values()), results
    assert f"0 ok, {len(journal_files(dest, '1-of-3'))} already there" in results[1][1]
    assert f"0 ok, {len(journal_files(dest, '3-of-3'))} already there" in results[3][1]
    after = emu.stats.snapshot()["file_bytes"]
    fetched = {path for path in after if after[path] != before.get(path)}
    assert fetched and fetched <= set(journal_files(dest, "2-of-3"))  # only shard 2 fetched, only its files
    for path, kept in parts.items():  # resumed from the bytes on disk, not fetched again from zero
        assert after[path] - before.get(path, 0) == sizes(emu)[path] - kept
    assert on_disk(dest) == expected(emu)

    requests = emu.stats.snapshot()["total_requests"]
    last = [start(command(emu, dest, "--shard", f"{k}/3")) for k in (1, 2, 3)]
    assert [finish(p)[0] for p in last] == [0, 0, 0]
    assert emu.stats.snapshot()["total_requests"] == requests  # a finished sharded mirror: not one request


GUEST_LIMIT, SEARCH_LIMIT = 133, 30  # Zenodo's guest limits per "minute" (the emulator's defaults)
SHARE_BOUND = GUEST_LIMIT // 3 + SEARCH_LIMIT // 3  # the most one shard at 1/3 may send in one "minute"


def budget_dataset() -> Dataset:
    return Dataset([record(rid, concept=rid - 1, files={f"f{j}.dat": 500 + j for j in range(4)})
                    for rid in range(1001, 1151, 2)])  # 75 records, 300 files: 3 pages and ~100 files a shard


def shard_agents(emu: RunningEmulator, tmp_path: Path, shards: list[int], *extra: str) -> list[tuple[int, str]]:
    """Run the shards at once, each with a User-Agent of its own (so the emulator can tell their requests
    apart while it counts the budget per address); their exit codes and stderr."""
    processes = [start(command(emu, tmp_path, "--shard", f"{k}/3", *extra),
                       env={"ASYNCDL_USER_AGENT": f"asyncdl-tests/shard-{k}"}) for k in shards]
    return [finish(p) for p in processes]


def test_three_shards_behind_one_address_share_its_budget(start_emulator: Start, tmp_path: Path) -> None:
    """Zenodo counts requests per address (and User-Agent): at the default share of 1/3, each of three shards
    keeps to a third of the budget in every window, and together they get not one 429 (Zenodo's guest
    limits on a 3-second "minute", counted here per address only)."""
    emu = start_emulator(EmulatorConfig(minute=3.0, rate_key="ip"), dataset=budget_dataset())
    results = shard_agents(emu, tmp_path, [1, 2, 3])
    assert [code for code, _ in results] == [0, 0, 0], [err for _, err in results]
    assert on_disk(tmp_path) == expected(emu)
    peaks = emu.stats.agent_peaks
    print(f"3 shards at 1/3 each: {sum(emu.stats.requests.values())} requests, {emu.stats.rate_limited} "
          f"answered 429; most requests of one shard in one window: {dict(peaks)} (bound {SHARE_BOUND})")
    assert emu.stats.rate_limited == 0  # not one 429 between them
    assert len(peaks) == 3 and all(0 < peak <= SHARE_BOUND for peak in peaks.values())


def test_a_shard_with_the_whole_budget_takes_more_than_its_share(start_emulator: Start, tmp_path: Path) -> None:
    """The measurement above can tell right from wrong: a shard told it may use the whole budget
    (--rate-share 1) sends far more than a third of it in one window."""
    emu = start_emulator(EmulatorConfig(minute=3.0, rate_key="ip"), dataset=budget_dataset())
    ((code, stderr),) = shard_agents(emu, tmp_path, [1], "--rate-share", "1")
    assert code == 0, stderr
    peak = emu.stats.agent_peaks["asyncdl-tests/shard-1"]
    print(f"one shard at share 1: {peak} requests in its busiest window (a third would be {SHARE_BOUND})")
    assert peak > 1.5 * SHARE_BOUND


def stored_pages(dest: Path) -> int:
    """Search pages the shared crawl store holds (0 while it is being created)."""
    found = list((dest / ".asyncdl").glob("crawl-*.sqlite"))
    if not found:
        return 0
    try:
        with sqlite3.connect(f"file:{found[0]}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM pages").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_the_crawl_is_taken_over_after_the_crawling_shard_is_killed(start_emulator: Start, tmp_path: Path) -> None:
    """Shard 1 crawls (one page at a time, slowly) and is SIGKILLed after two pages; shard 2 takes the lease
    over, replays the stored pages instead of asking again and crawls the rest; shard 1, run again, reads
    the finished crawl. Searches: the pages needed, and at most the one in flight at the kill again."""
    emu = start_emulator(EmulatorConfig(rate_limits=False, faults=FaultConfig(latency=0.3)), dataset=many(150))
    dest = tmp_path / "mirror"
    slow = ("--page-concurrency", "1")
    crawler = start(command(emu, dest, "--shard", "1/2", *slow))
    deadline = time.monotonic() + 60
    while stored_pages(dest) < 2 and time.monotonic() < deadline and crawler.poll() is None:
        time.sleep(0.05)
    crawler.send_signal(signal.SIGKILL)
    crawler.wait()
    pages_needed = 6  # 150 records, 25 a page without a token
    assert 2 <= emu.stats.requests["search"] < pages_needed  # killed mid-crawl
    code, stderr = finish(start(command(emu, dest, "--shard", "2/2", "--progress", "plain", "-v", *slow)))
    assert code == 0, stderr
    assert "taking over the shared crawl" in stderr
    code, stderr = finish(start(command(emu, dest, "--shard", "1/2", *slow)))
    assert code == 0, stderr
    assert pages_needed <= emu.stats.requests["search"] <= pages_needed + 1
    assert on_disk(dest) == expected(emu)

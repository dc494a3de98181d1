"""`asyncdl bag` and `mirror --bag`: a finished mirror (nested folders, hostile-looking names, linked duplicates,
records' JSON) made a BagIt bag in place or into a new folder, validated by the Library of Congress's bagit
(fast and full); its manifest comes from the journal (a payload file changed behind its back keeps the
journal's md5, so bag never read it); verify, status and mirror go on working; bad inputs are one line and
move nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import bagit
import pytest

from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, RunningEmulator
from asyncdl.store.lock import RunLock
from tests.datasets import record

Start = Callable[..., RunningEmulator]
SHARED = b"the same stored file in two versions\n" * 50
HOSTILE = {  # key -> where asyncdl puts it under the record's folder
    "a b.csv": "a b.csv", "\u00fc.txt": "\u00fc.txt", "-dash": "-dash", "%41.txt": "%41.txt",
    "50% off.txt": "50% off.txt", "new\nline.txt": "new_line.txt", "deep/er/n\u00e9st.bin": "deep/er/n\u00e9st.bin",
    "#hash & 'quote'.txt": "#hash & 'quote'.txt", "data": "data",
}


def dataset() -> Dataset:
    """Record 11 (2019) with hostile-looking keys; records 21 and 22, two versions of concept 20 (2021), share
    a stored file (same file id), which asyncdl fetches once and links."""
    hostile: dict[str, bytes | int] = {key: f"{key!r}\n".encode() for key in HOSTILE}
    first = record(21, concept=20, created="2021-03-01", files={"shared.bin": SHARED, "v1.txt": b"one\n"},
                   owners=("9",))
    second = record(22, concept=20, created="2021-06-01", version=1, files={"shared.bin": SHARED, "v2.txt": b"two\n"},
                    owners=("9",))
    second.files[0].file_id = first.files[0].file_id
    second.files[1].checksum_kind = "sha256"  # no md5 in the journal: the one file bag hashes
    return Dataset([record(11, concept=10, created="2019-05-01", files=hostile, owners=("9",)),
                    first, second])


def asyncdl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "asyncdl", *args], capture_output=True, text=True, timeout=120)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    return lines[0]


def mirror(emu: RunningEmulator, dest: Path, *more: str) -> subprocess.CompletedProcess[str]:
    result = asyncdl("mirror", "--base-url", emu.url, "--owner", "9", "--all-versions", "--layout",
                     "{year}/{id}/{key}", "--save-metadata", "--progress", "plain", str(dest), *more)
    assert result.returncode == 0, result.stderr
    return result


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def manifest(bag_dir: Path) -> dict[str, str]:
    """The bag's manifest-md5.txt as bagit reads it: path -> md5."""
    return {path: hashes["md5"] for path, hashes in bagit.Bag(str(bag_dir)).payload_entries().items()}


def test_a_mirror_bagged_in_place_validates_and_stays_a_mirror(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    dest = tmp_path / "m"
    first = mirror(emu, dest)
    assert "1 linked" in first.stderr
    payload = {path: body for path, body in tree(dest).items() if not path.startswith((".asyncdl/", "manifest.csv"))}
    for key, name in HOSTILE.items():
        assert f"2019/11/{name}" in payload, key
    assert os.path.samefile(dest / "2021/21/shared.bin", dest / "2021/22/shared.bin")  # linked, one file
    # replaced behind the journal's back, same size and mtime: bag must not notice (it never reads a payload byte)
    victim = dest / "2019/11/a b.csv"
    before = victim.stat()
    victim.write_bytes(b"X" * before.st_size)
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))

    result = asyncdl("bag", str(dest))
    assert result.returncode == 0, result.stderr
    assert f"{dest} is a bag, its files under {dest / 'data'}" in one_line(result)
    assert "1 hashed (no md5 in the journal)" in result.stderr and "3 records' JSON in metadata/" in result.stderr
    bag = bagit.Bag(str(dest))
    listed = manifest(dest)
    assert set(listed) == {f"data/{path}" for path in payload if "zenodo-record-" not in path}
    assert listed["data/2019/11/a b.csv"] == hashlib.md5(payload["2019/11/a b.csv"]).hexdigest()  # the journal's
    assert listed["data/2021/21/shared.bin"] == listed["data/2021/22/shared.bin"] == hashlib.md5(SHARED).hexdigest()
    assert listed["data/2021/22/v2.txt"] == hashlib.md5(b"two\n").hexdigest()  # the sha256 file, hashed
    bag.validate(fast=True)  # sizes and count agree
    with pytest.raises(bagit.BagValidationError) as failed:
        bag.validate()  # ... but the bytes are not the ones the journal verified
    failures = [(e.path, e.expected) for e in failed.value.details]
    assert failures == [("data/2019/11/a b.csv", listed["data/2019/11/a b.csv"])]
    victim = dest / "data/2019/11/a b.csv"
    victim.write_bytes(payload["2019/11/a b.csv"])  # the file as it was verified
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    bagit.Bag(str(dest)).validate()
    bagit.Bag(str(dest)).validate(fast=True)

    info = bagit.Bag(str(dest)).info
    assert info["Source-Organization"] == emu.url
    assert sorted(info["External-Identifier"]) == ["10.5281/zenodo.11", "10.5281/zenodo.21", "10.5281/zenodo.22"]
    data = [body for path, body in payload.items() if "zenodo-record-" not in path]
    assert info["Payload-Oxum"] == f"{sum(map(len, data))}.{len(data)}"  # bytes.files, from the journal
    assert info["Bagging-Date"] == date.today().isoformat()
    assert (info["Record-Count"], info["Linked-Files"], info["Records-Created"]) == ("3", "1", "2019-05-01/2021-06-01")
    assert sorted(p.name for p in (dest / "metadata").iterdir()) == [f"zenodo-record-{i}.json" for i in (11, 21, 22)]
    assert {path for path in bagit.Bag(str(dest)).tagfile_entries()} == {
        "bagit.txt", "bag-info.txt", "manifest-md5.txt", *(f"metadata/zenodo-record-{i}.json" for i in (11, 21, 22))}

    verified = asyncdl("verify", str(dest))
    assert verified.returncode == 0 and f"verified {len(listed)} files: {len(listed)} ok" in verified.stderr
    status = asyncdl("status", str(dest), "--format", "json")
    assert status.returncode == 0 and '"done"' in status.stdout
    assert (dest / "manifest.csv").read_text(encoding="utf-8").count("data/2019/11/") == len(HOSTILE)
    again = asyncdl("mirror", "--base-url", emu.url, "--owner", "9", "--all-versions", "--layout",
                    "{year}/{id}/{key}", "--progress", "plain", str(dest))  # the same command: nothing to fetch
    assert again.returncode == 0 and f"0 ok, {len(listed)} already there" in again.stderr, again.stderr
    assert "note:" not in again.stderr
    bagit.Bag(str(dest)).validate()


def payload_of(dest: Path) -> dict[str, bytes]:
    """Every file in DEST but asyncdl's own state."""
    return {path: body for path, body in tree(dest).items() if not path.startswith(".asyncdl/")}


def test_bad_inputs_are_one_line_and_move_nothing(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    dest = tmp_path / "m"
    mirror(emu, dest)
    as_mirrored = payload_of(dest)

    def refused(code: int, words: str, *args: str) -> None:
        result = asyncdl("bag", *args)
        assert result.returncode == code and words in one_line(result), result.stderr
        assert payload_of(dest) == as_mirrored and not (dest / "data").exists()
        assert not (dest / ".asyncdl" / "bag.json").exists()

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine\n")
    refused(2, f"{plain} has no asyncdl journal", str(plain))
    assert [p.name for p in plain.iterdir()] == ["notes.txt"]  # nothing made in it
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    refused(2, f"--into {full} exists and is not an empty folder", str(dest), "--into", str(full))
    refused(2, "is inside", str(dest), "--into", str(dest / "2019" / "bag"))
    with RunLock(dest / ".asyncdl", "mirror --owner 9 (a test holding the lock)"):
        refused(3, "is in use by another asyncdl run", str(dest))
    stray = dest / "2021" / "notes.txt"
    stray.write_text("mine\n")
    as_mirrored = payload_of(dest)
    refused(2, "holds 1 file no journal knows (e.g. 2021/notes.txt)", str(dest))
    stray.unlink()
    as_mirrored = payload_of(dest)
    touched = dest / "2021" / "21" / "v1.txt"
    os.utime(touched, (1_000_000_000, 1_000_000_000))
    refused(2, "1 file in", str(dest))  # ... changed on disk since the journal verified them
    assert "changed on disk since the journal verified them (e.g. 2021/21/v1.txt)" in asyncdl("bag", str(dest)).stderr
    touched.unlink()
    as_mirrored = payload_of(dest)
    refused(2, "1 finished file not in", str(dest))
    assert asyncdl("verify", str(dest)).returncode == 1  # the journal now says failed
    refused(2, "is not a finished mirror: 1 failed (e.g. 2021/21/v1.txt: checksum mismatch or missing at verify)",
            str(dest))


def test_a_bag_into_a_new_folder_links_and_leaves_the_mirror_as_it_was(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    dest, new = tmp_path / "m", tmp_path / "archive" / "bag"
    mirror(emu, dest)
    before = payload_of(dest)
    result = asyncdl("bag", str(dest), "--into", str(new))
    assert result.returncode == 0 and f"bagged {dest} into {new} (13 by hard link)" in one_line(result)
    assert payload_of(dest) == before and not (dest / "bagit.txt").exists()  # DEST is the mirror it was
    assert os.path.samefile(new / "data/2019/11/a b.csv", dest / "2019/11/a b.csv")
    bagit.Bag(str(new)).validate(fast=True)
    bagit.Bag(str(new)).validate()
    assert set(manifest(new)) == {f"data/{p}" for p in before if "zenodo-record-" not in p and p != "manifest.csv"}
    assert (new / "metadata" / "zenodo-record-11.json").read_bytes() == before["2019/11/zenodo-record-11.json"]
    assert not (new / ".asyncdl").exists() and not (new / "manifest.csv").exists()
    assert asyncdl("verify", str(dest)).returncode == 0

    checked = asyncdl("verify", str(new))  # no journal: checked against the bag's manifest
    assert checked.returncode == 0 and "verified 13 files: 13 ok, 0 mismatched, 0 missing" in checked.stderr
    victim = new / "data" / "2021" / "21" / "v1.txt"
    victim.unlink()  # a new file in its place: the mirror's copy (the other name of the link) is left alone
    victim.write_bytes(b"ONE\n")
    (new / "data" / "extra.txt").write_bytes(b"unlisted\n")
    bad = asyncdl("verify", str(new))
    assert bad.returncode == 1 and "mismatch: data/2021/21/v1.txt: md5" in bad.stderr
    assert "mismatch: data/extra.txt: in data/ but not in manifest-md5.txt" in bad.stderr
    assert "verified 13 files: 12 ok, 2 mismatched, 0 missing" in bad.stderr
    repair = asyncdl("verify", str(new), "--repair")
    assert repair.returncode == 2 and "is a bag without a journal" in one_line(repair)
    assert (dest / "2021/21/v1.txt").read_bytes() == b"one\n"


def test_mirror_bag_bags_a_complete_run_only(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    dest = tmp_path / "m"
    done = mirror(emu, dest, "--bag")
    assert f"{dest} is a bag, its files under {dest / 'data'}" in done.stderr
    bagit.Bag(str(dest)).validate()
    # a run into the bag that changes its payload (the records' JSON saved again under data/) says so ...
    again = mirror(emu, dest)
    assert f"note: {dest} is a BagIt bag and this run changed its payload" in again.stderr
    assert not bagit.Bag(str(dest)).is_valid()
    rebag = asyncdl("bag", str(dest))  # ... and bag brings it up to date
    assert rebag.returncode == 0 and f"{dest} is a bag again" in one_line(rebag)
    bagit.Bag(str(dest)).validate()
    quiet = asyncdl("mirror", "--base-url", emu.url, "--owner", "9", "--all-versions", "--layout", "{year}/{id}/{key}",
                    "--progress", "plain", str(dest))
    assert quiet.returncode == 0 and "note:" not in quiet.stderr  # nothing changed: the bag is still right

    broken = start_emulator(EmulatorConfig(rate_limits=False, faults=FaultConfig(corrupt=1.0)), dataset=dataset())
    failing = tmp_path / "f"
    result = asyncdl("mirror", "--base-url", broken.url, "--owner", "9", "--max-attempts", "1", "--progress", "plain",
                     str(failing), "--bag")
    assert result.returncode == 1
    assert "not bagged: a bag is made after a complete run, and this one ended with exit 1" in result.stderr
    assert not (failing / "bagit.txt").exists() and not (failing / "data").exists()


def synthetic_mirror(dest: Path, names: list[str], *, files_per_record: int = 100) -> dict[str, bytes]:
    """A finished mirror made on the spot: NAME's bytes at DEST/ID/NAME, a journal that says each is done (its
    md5, size and mtime), its record and a complete run. Returns path -> bytes."""
    from asyncdl.store.journal import connect
    from asyncdl.store.names import journal_path

    made: dict[str, bytes] = {}
    rows, records, folders = [], {}, set()
    for number, name in enumerate(names):
        record_id = str(1000 + number // files_per_record)
        path = f"{record_id}/{name}"
        body = f"{number}\n".encode()
        target = os.path.join(dest, path)
        if (folder := os.path.dirname(target)) not in folders:
            os.makedirs(folder, exist_ok=True)
            folders.add(folder)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(descriptor, body)
        mtime = os.fstat(descriptor).st_mtime
        os.close(descriptor)
        made[path] = body
        md5 = hashlib.md5(body).hexdigest()
        rows.append((path, record_id, name, len(body), md5, f"https://zenodo.org/api/records/{record_id}/files/x",
                     "done", len(body), mtime, f"md5:{md5}"))
        records[record_id] = json.dumps({"api_url": f"https://zenodo.org/api/records/{record_id}",
                                         "doi": f"10.5281/zenodo.{record_id}", "created": "2020-01-01T00:00:00"})
    db = connect(journal_path(dest))
    with db:
        db.execute("BEGIN")
        db.execute("INSERT INTO runs (command, selection, started, ended, outcome, layout) VALUES "
                   "('mirror --query ''*'' from https://zenodo.org into x', 'k', 1.0, 2.0, 'complete', '{id}/{key}')")
        db.executemany("INSERT INTO records (id, metadata) VALUES (?, ?)", records.items())
        db.executemany("INSERT INTO files (path, record_id, key, size, md5, url, state, bytes_done, mtime, checksum) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.close()
    return made


OPENED: list[str] = []  # what the audit hook saw opened under WATCHED
WATCHED: list[str] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and WATCHED and isinstance(args[0], str | bytes | os.PathLike):
        path = os.fsdecode(args[0])
        if any(path.startswith(folder) for folder in WATCHED):
            OPENED.append(path)


@pytest.fixture(scope="module")
def audited() -> None:
    sys.addaudithook(_audit)  # for good: an audit hook cannot be removed (it does nothing while WATCHED is empty)


@pytest.mark.slow
def test_a_bag_of_many_files_opens_none_of_them(tmp_path: Path, audited: None) -> None:
    """10,000 files by default (ASYNCDL_BAG_FILES=100000 for the README's figure, printed with -s: making the
    files is most of the test's time, not bagging them). No time is asserted: not one payload file opened is
    the proof that no data was read."""
    import time

    from asyncdl.bag import bag

    count = int(os.environ.get("ASYNCDL_BAG_FILES", "10000"))
    dest = tmp_path / "big"
    names = [f"{n // 1000 % 10}/f {n}.txt" for n in range(count)]  # 1000 records of 100 files, two folders deep
    made = synthetic_mirror(dest, names)
    tops = sorted({path.split("/", 1)[0] for path in made})
    WATCHED[:] = [str(dest / "data") + os.sep, *(str(dest / top) + os.sep for top in tops)]
    began = time.monotonic()
    try:
        report = bag(dest)
    finally:
        seconds = time.monotonic() - began
        WATCHED.clear()
    print(f"bag of {count} files: {seconds:.1f} s")
    assert OPENED == []  # not one payload file was opened: no byte of data read
    assert report.files == count and report.hashed == [] and report.bytes == sum(map(len, made.values()))
    bagit.Bag(str(dest)).validate(fast=True)
    assert len(manifest(dest)) == count


def test_names_a_sanitiser_never_makes_still_make_a_valid_bag(tmp_path: Path, audited: None) -> None:
    """CR, LF and escape-like % in names on disk (asyncdl's own names never have CR or LF): percent-encoded in the
    manifest, read back by bagit; the full validation hashes every file and agrees."""
    from asyncdl.bag import bag, decode_path, encode_path

    names = ["new\nline.txt", "car\rriage.txt", "%41 stays.txt", "50% off.txt", "-x", " lead", "\u00e9t\u00e9/\u00fc"]
    made = synthetic_mirror(tmp_path, names)
    bag(tmp_path)
    text = (tmp_path / "manifest-md5.txt").read_text(encoding="utf-8")
    assert "data/1000/new%0Aline.txt" in text and "data/1000/car%0Driage.txt" in text
    assert "data/1000/%41 stays.txt" in text and "data/1000/50% off.txt" in text
    assert set(manifest(tmp_path)) == {f"data/{path}" for path in made}
    bagit.Bag(str(tmp_path)).validate()
    for name in ["100%25.txt", "%0A", "%0d%25", "a\r\nb", "%", "%%41"]:
        assert decode_path(encode_path(name)) == name
    assert encode_path("100%25.txt") == "100%2525.txt" and encode_path("%41") == "%41"


def test_an_interrupted_bag_is_finished_by_running_it_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after the files moved under data/ and before the journal followed them: mirror and verify refuse
    that DEST in one line, the next bag finishes it, and the journal's paths are moved once."""
    import asyncdl.bag as bagging
    from asyncdl.store.bagging import move_under
    from asyncdl.store.journal import connect
    from asyncdl.store.names import journal_path

    dest = tmp_path / "m"
    made = synthetic_mirror(dest, ["a.txt", "sub/b.txt", "data/c.txt"], files_per_record=2)

    def killed(*args: object) -> None:
        raise KeyboardInterrupt  # what a kill at this point leaves: nothing after it runs

    monkeypatch.setattr(bagging, "move_under", killed)
    with pytest.raises(KeyboardInterrupt):
        bagging.bag(dest)
    monkeypatch.undo()
    assert sorted(tree(dest / "data")) == sorted(made) and bagging.state_of(dest)["state"] == "moving"
    for args in (["verify", str(dest)], ["mirror", "--query", "*", "--base-url", "http://127.0.0.1:9", str(dest)]):
        result = asyncdl(*args)
        assert result.returncode == 2 and f"run asyncdl bag {dest} again to finish it" in one_line(result)
    bagging.bag(dest)
    bagit.Bag(str(dest)).validate()
    move_under([journal_path(dest)], "data", bagging.state_of(dest)["token"], "again")  # the same bag: no change
    db = connect(journal_path(dest))
    paths = sorted(row[0] for row in db.execute("SELECT path FROM files"))
    db.close()
    assert paths == sorted(f"data/{path}" for path in made)  # data/1001/data/c.txt: a folder named data, kept
    assert asyncdl("verify", str(dest)).returncode == 0

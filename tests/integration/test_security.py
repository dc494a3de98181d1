"""Secrets and trust boundaries: the token appears nowhere, and never follows a redirect to another host."""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncdl import Config, Selection, crawl_records
from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from asyncdl.errors import AsyncdlError, AuthenticationError
from tests.datasets import record

Start = Callable[..., RunningEmulator]
TOKEN = "s3cr3t-t0ken-4sync"


def dataset() -> Dataset:
    return Dataset([record(11, concept=10, files={"a.txt": b"alpha\n"}, owners=("88403",)),
                    record(21, concept=20, files={"b.txt": b"beta\n"}, owners=("88403",), access="restricted")])


def test_the_token_appears_nowhere(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(tokens=((TOKEN, "88403"),)), dataset=dataset())
    runs = []
    for progress in ("json", "plain"):
        dest = tmp_path / progress
        runs.append(subprocess.run([sys.executable, "-m", "asyncdl", "mirror", "--base-url", emu.url, "--owner",
                                    "88403", str(dest), "--token", TOKEN, "--progress", progress, "-v",
                                    "--save-metadata"], capture_output=True, text=True, timeout=120))
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert (tmp_path / "json" / "21" / "b.txt").read_bytes() == b"beta\n"  # the token was used: restricted file
    listed = subprocess.run([sys.executable, "-m", "asyncdl", "list", "--base-url", emu.url, "--owner", "88403",
                             "--format", "json"], capture_output=True, text=True, timeout=120,
                            env={"ZENODO_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"})
    refused = subprocess.run([sys.executable, "-m", "asyncdl", "get", "--base-url", emu.url, "11", "-o",
                              str(tmp_path / "refused"), "--token", TOKEN + "-wrong"], capture_output=True, text=True,
                             timeout=120)
    assert listed.returncode == 0 and refused.returncode == 1 and "refused the token" in refused.stderr
    for result in (*runs, listed, refused):
        assert TOKEN not in result.stdout and TOKEN not in result.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path  # journal, manifest, metadata, data
    assert not any(TOKEN in attempt for attempt in emu.stats.attempts)  # never in a URL


def test_no_command_shows_the_token_at_its_most_verbose(start_emulator: Start, tmp_path: Path) -> None:
    """Every command, the token from the environment, the flag or a config file's token_env; the most verbose
    output in each progress mode; errors that carry URLs (a 404, a refused token, a URL with access_token)."""
    emu = start_emulator(EmulatorConfig(tokens=((TOKEN, "88403"),)), dataset=dataset())
    env = {**os.environ, "ZENODO_TOKEN": TOKEN, "MY_TOKEN": TOKEN}
    config = tmp_path / "settings.toml"
    config.write_text('[connection]\ntoken_env = "MY_TOKEN"\n')
    dest = tmp_path / "dest"

    def asyncdl(*args: str, token_env: dict[str, str] = env) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "asyncdl", *args], capture_output=True, text=True,
                              timeout=120, env=token_env)

    without = {k: v for k, v in env.items() if k != "ZENODO_TOKEN"}
    runs = [asyncdl("mirror", "--base-url", emu.url, "--owner", "88403", str(dest), "--progress", mode, "-v",
                    "--save-metadata", "--refresh") for mode in ("rich", "plain", "json")]
    runs.append(asyncdl("mirror", "--base-url", emu.url, "--owner", "88403", str(tmp_path / "by-config"),
                        "--config", str(config), "--progress", "json", "-v", token_env=without))
    (dest / "21" / "b.txt").write_bytes(b"tampered\n")  # a restricted file: its repair needs the token
    elsewhere = asyncdl("verify", str(dest), "--repair")  # the token is for zenodo.org: not sent to the emulator
    runs += [asyncdl("status", str(dest)), asyncdl("status", str(dest), "--format", "json"),
             asyncdl("verify", str(dest), "--repair", "--base-url", emu.url), asyncdl("verify", str(dest)),
             asyncdl("list", "--base-url", emu.url, "--owner", "88403", "--format", "json")]
    refused = [asyncdl("get", "--base-url", emu.url, "999", "-o", str(tmp_path / "missing"), "-v"),
               asyncdl("get", "--base-url", emu.url, f"{emu.url}/api/records/11?access_token={TOKEN}", "-o",
                       str(tmp_path / "wrong"), "--token", "x" + TOKEN, "-v"),
               asyncdl("get", f"https://zenodo.org/records/abc?access_token={TOKEN}", "-o",
                       str(tmp_path / "typo"), "-v")]
    assert [r.returncode for r in runs] == [0] * len(runs), [r.stderr for r in runs if r.returncode]
    assert (dest / "21" / "b.txt").read_bytes() == b"beta\n"  # repaired with the token
    assert (tmp_path / "by-config" / "21" / "b.txt").read_bytes() == b"beta\n"  # token_env was used
    assert elsewhere.returncode == 1 and "could not repair: 21/b.txt: restricted (403)" in elsewhere.stderr
    refused.append(elsewhere)
    assert [r.returncode for r in refused] == [2, 1, 2, 1], [r.stderr for r in refused]
    assert "no record 999" in refused[0].stderr and "refused the token" in refused[1].stderr
    assert "access_token=***" in refused[2].stderr and not (tmp_path / "typo").exists()  # nothing written
    for result in (*runs, *refused):
        assert result.stdout.strip() or result.stderr.strip()  # each said something
        assert TOKEN not in result.stdout and TOKEN not in result.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.anyio
async def test_errors_raised_to_python_callers_hold_no_token(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(tokens=((TOKEN, "88403"),)), dataset=dataset())
    for selection, config in [(Selection(identifiers=("11",)), Config(base_url=emu.url, token="x" + TOKEN)),
                              (Selection(identifiers=("999",)), Config(base_url=emu.url, token=TOKEN))]:
        with pytest.raises(AsyncdlError) as caught:
            await crawl_records(selection, config)
        shown = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
        assert TOKEN not in shown and str(caught.value)


@pytest.mark.anyio
async def test_authorization_never_follows_a_redirect_to_another_host(start_emulator: Start) -> None:
    other = start_emulator(EmulatorConfig(rate_limits=False, tokens=()), dataset=dataset())  # knows no token
    # the first host answers a concept id with a redirect to the other host
    first = start_emulator(EmulatorConfig(rate_limits=False, tokens=((TOKEN, "88403"),), public_url=other.url),
                           dataset=dataset())
    first_url = f"http://127.0.0.1:{first.port}"  # first.url is where its links point: the other host
    records = await crawl_records(Selection(identifiers=("10",)), Config(base_url=first_url, token=TOKEN))
    assert [r.id for r in records] == ["11"]  # the other host would have answered 401 to the token
    assert first.stats.requests["record"] == 1  # the concept id, answered with a redirect to the other host
    assert other.stats.statuses.get(401) is None and other.stats.requests["record"] == 1
    with pytest.raises(AuthenticationError):  # and the same request with the token sent there is refused
        await crawl_records(Selection(identifiers=("11",)), Config(base_url=other.url, token=TOKEN))


def test_config_repr_hides_the_token() -> None:
    assert TOKEN not in repr(Config(token=TOKEN)) and TOKEN not in str(Config(token=TOKEN))

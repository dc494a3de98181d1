"""Configuration: the example file is read whole, layers override in order, mistakes are one-line errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from asyncdl.errors import ConfigError
from asyncdl.settings import SCHEMA, layered, read_environment, read_file
from tests.datasets import record

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"
Start = Callable[..., RunningEmulator]


def asyncdl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "asyncdl", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "XDG_CONFIG_HOME": "/nonexistent", **(env or {})})


def test_every_setting_of_the_example_is_read() -> None:
    settings = read_file(EXAMPLE)
    every_key = {name for section in SCHEMA.values() for _, name in section.values()}
    commented_out = {"token_file", "rate_share"}  # an alternative to token_env; shards' 1/N default kept
    assert set(settings) == every_key - commented_out
    assert settings["chunk_size"] == 1024 * 1024 and settings["segment_threshold"] == 512 * 1024 * 1024
    assert settings["layout"] == "{id}/{key}" and settings["include"] == ()


def test_layers_override_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "xdg" / "asyncdl" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[transfer]\nconcurrency = 2\nsegments = 3\n[files]\nlayout = "{year}/{key}"\n')
    given = tmp_path / "given.toml"
    given.write_text("[transfer]\nconcurrency = 6\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    settings = layered(given, {"ASYNCDL_SEGMENTS": "5", "ASYNCDL_INCLUDE": "*.csv,*.txt"})
    assert settings["layout"] == "{year}/{key}"  # from the user file
    assert settings["concurrency"] == 6  # --config beats the user file
    assert settings["segments"] == 5  # the environment beats both
    assert settings["include"] == ("*.csv", "*.txt")


@pytest.mark.parametrize(("text", "message"), [
    ("[transfer]\nconcurency = 3\n", "unknown setting transfer.concurency in"),
    ("[transfer]\nconcurrency = \"many\"\n", "transfer.concurrency in"),
    ("[nope]\nx = 1\n", "unknown section [nope] in"),
    ("[transfer\n", "is not valid TOML"),
])
def test_mistakes_name_the_key_and_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        read_file(path)
    result = asyncdl("mirror", "--config", str(path), "--owner", "1", str(tmp_path / "out"), "--dry-run")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0]


def test_environment_mistakes_are_errors() -> None:
    with pytest.raises(ConfigError, match="ASYNCDL_CONCURRENCY must be"):
        read_environment({"ASYNCDL_CONCURRENCY": "lots"})


def test_config_file_and_flags_in_a_real_run(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False),
                         dataset=Dataset([record(11, concept=10, files={"a.csv": b"1\n", "b.txt": b"2\n"})]))
    config = tmp_path / "asyncdl.toml"
    config.write_text(f'[connection]\nbase_url = "{emu.url}"\n[files]\ninclude = ["*.csv"]\nlayout = "x/{{key}}"\n')
    result = asyncdl("get", "11", "-o", str(tmp_path / "out"), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "x" / "a.csv").read_bytes() == b"1\n" and not (tmp_path / "out" / "x" / "b.txt").exists()
    flagged = asyncdl("get", "11", "-o", str(tmp_path / "out2"), "--config", str(config), "--layout", "{key}")
    assert flagged.returncode == 0 and (tmp_path / "out2" / "a.csv").exists()  # the flag wins

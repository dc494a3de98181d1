"""Configuration: the example file is read whole, layers override in order, mistakes are one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncdl import settings
from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from asyncdl.errors import ConfigError
from asyncdl.settings import SETTINGS, layered, read_environment, read_file
from tests.datasets import record

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"
Start = Callable[..., RunningEmulator]


def asyncdl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "asyncdl", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "XDG_CONFIG_HOME": "/nonexistent", **(env or {})})


def test_the_example_is_made_from_the_declarations_and_read_whole() -> None:
    assert EXAMPLE.read_text() == settings.example(), "run: python -m asyncdl.settings > config.example.toml"
    values = read_file(EXAMPLE)
    commented_out = {"token_file", "rate_share"}  # an alternative to token_env; shards' 1/N default kept
    assert set(values) == {s.field for s in SETTINGS} - commented_out
    assert values["chunk_size"] == 1024 * 1024 and values["segment_threshold"] == 512 * 1024 * 1024
    assert values["layout"] == "{id}/{key}" and values["include"] == ()
    for setting in SETTINGS:  # every default in the file is the one the code uses
        if setting.field in values:
            assert values[setting.field] == setting.default_value or (values[setting.field] == 0 and
                                                                       setting.default_value is None), setting.key


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [s.key for s in SETTINGS if s.key not in readme]
    missing += [s.flag for s in SETTINGS if s.flag and f"`{s.flag}" not in readme]
    assert missing == []


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("-j", "0", "must be \"auto\" or a whole number of at least 1, not '0'"),
    ("--concurrency", "-1", "must be \"auto\" or a whole number of at least 1"),
    ("--segments", "0", "must be \"auto\" or a whole number of at least 1"),
    ("--connections-per-host", "-1", "must be a whole number, 0 or more"),
    ("--bwlimit", "10", "must be a size a second: 0 (no cap) or at least 1KiB"),
    ("--bwlimit-file", "512", "must be a size a second: 0 (no cap) or at least 1KiB"),
    ("--retries", "-1", "must be a whole number, 0 or more"),
    ("--read-timeout", "0", "must be a number above 0"),
    ("--max-attempts", "0", "must be a whole number of at least 1"),
    ("--chunk-size", "0", "must be a size of at least 1024 bytes"),
    ("--chunk-size", "lots", "must be a size"),
    ("--rate-share", "2", "must be a fraction above 0 and at most 1"),
    ("--archive", "sometimes", "must be one of never, auto, always, not 'sometimes'"),
])
def test_flags_are_checked_as_files_and_variables_are(tmp_path: Path, flag: str, value: str, message: str) -> None:
    """The same declaration checks a value from a flag, a variable and a file: one-line errors, exit 2."""
    result = asyncdl("mirror", "--owner", "1", str(tmp_path / "out"), "--dry-run", flag, value)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    setting = next(s for s in SETTINGS if flag in (s.flag, s.short))
    with pytest.raises(ConfigError, match=f"{setting.env} must be"):
        read_environment({setting.env: value})


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
    ("[files]\narchive = \"yes\"\n", "files.archive in"),
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


def test_an_older_config_files_archive_switch_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "old.toml"
    path.write_text("[files]\narchive = true\n")
    assert read_file(path)["archive"] == "always"
    path.write_text("[files]\narchive = false\n")
    assert read_file(path)["archive"] == "never"


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


def test_config_shows_each_setting_and_where_it_came_from(tmp_path: Path) -> None:
    path = tmp_path / "server.toml"
    path.write_text('[transfer]\nconcurrency = 6\nsegments = 3\n', encoding="utf-8")
    env = {**os.environ, "ASYNCDL_SEGMENTS": "5", "ZENODO_TOKEN": "secret-token-value", "COLUMNS": "200",
           "XDG_CONFIG_HOME": str(tmp_path / "none")}
    result = subprocess.run([sys.executable, "-m", "asyncdl", "config", "--config", str(path)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): (line.split("│")[2].strip(), line.split("│")[3].strip())
            for line in result.stdout.splitlines() if line.startswith("│") and line.split("│")[1].strip()}
    assert rows["transfer.concurrency"] == ("6", str(path))
    assert rows["transfer.segments"] == ("5", "ASYNCDL_SEGMENTS")  # the variable comes after the file
    assert rows["crawl.page_concurrency"] == ("8", "default")
    assert "token: set, from the variable ZENODO_TOKEN" in result.stdout
    assert "secret-token-value" not in result.stdout + result.stderr
    bad = subprocess.run([sys.executable, "-m", "asyncdl", "config"], capture_output=True, text=True, timeout=60,
                         env={**env, "ASYNCDL_SEGMENTS": "0"})
    assert bad.returncode == 2 and "ASYNCDL_SEGMENTS must be \"auto\" or a whole number of at least 1" in bad.stderr

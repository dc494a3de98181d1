"""Every setting, fed the values people get wrong, through its three paths: a flag, an ASYNCDL_* variable and a
config file. Where the declaration refuses a value, all three refuse it with one line (exit 2 for the flag),
before anything is sent; where it takes it, all three take it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from asyncdl.cli import main
from asyncdl.errors import ConfigError
from asyncdl.settings import SETTINGS, SWITCH, Setting, read_environment, read_file

BAD = ("-1", "0", "auto", "abc", "", "1e999", "nan", "2/0", "-0.5", "10 TB")
CASES = [(s, raw) for s in SETTINGS if s.flag and "mirror" in s.commands and s.kind is not SWITCH for raw in BAD]


def refused(setting: Setting, raw: str) -> bool:
    """The declaration's own verdict on a value typed as text."""
    try:
        setting.parse(setting.kind.read(raw))
    except ValueError:
        return True
    return False


@pytest.mark.parametrize(("setting", "raw"), CASES, ids=[f"{s.key}={r!r}" for s, r in CASES])
def test_a_value_is_judged_alike_from_a_flag_a_variable_and_a_file(setting: Setting, raw: str,
                                                                    tmp_path: Path) -> None:
    if not refused(setting, raw):
        taken = read_environment({setting.env: raw})[setting.field]
        assert taken == setting.parse(setting.kind.read(raw)) and taken == taken  # never NaN
        return  # taken everywhere: nothing more to check without a server
    with pytest.raises(ConfigError, match=f"^{setting.env} must be "):
        read_environment({setting.env: raw})
    path = tmp_path / "c.toml"
    path.write_text(f'[{setting.section}]\n{setting.key} = "{raw}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=f"{setting.section}.{setting.key} in {path}"):
        read_file(path)
    result = CliRunner().invoke(main, ["mirror", "--base-url", "http://127.0.0.1:9", "--owner", "1",
                                       str(tmp_path / "out"), "--dry-run", setting.flag or "", raw])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and str(setting.flag) in lines[0] and "must be" in lines[0]
    assert not (tmp_path / "out").exists()  # nothing written

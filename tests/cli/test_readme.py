"""The README documents every flag of every command."""

from __future__ import annotations

from pathlib import Path

import click

from asyncdl.cli import main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_flag_is_in_the_readme() -> None:
    missing = []
    for name, command in main.commands.items():
        for param in command.params:
            if isinstance(param, click.Option):
                longest = max(param.opts, key=len)
                if longest not in ("--help",) and f"`{longest}" not in README:
                    missing.append(f"{name} {longest}")
    assert missing == []

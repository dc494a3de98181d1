"""The command line: argument parsing and exit codes; the work is done elsewhere."""

from __future__ import annotations

import click

from asyncdl import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="asyncdl")
def main() -> None:
    """Mirror files from Zenodo and other InvenioRDM repositories: fast, resumable, md5-verified."""


def _register() -> None:
    from asyncdl.emulator.cli import emulate

    main.add_command(emulate)


_register()

"""The public Python API: one set of parameters for the async and sync forms, the hierarchy exported."""

from __future__ import annotations

import inspect

import asyncdl
from asyncdl import errors


def test_mirror_and_mirror_sync_take_the_same_parameters() -> None:
    assert inspect.signature(asyncdl.mirror).parameters == inspect.signature(asyncdl.mirror_sync).parameters


def test_every_error_and_the_sink_protocol_are_exported() -> None:
    hierarchy = {name for name, value in vars(errors).items()
                 if isinstance(value, type) and issubclass(value, errors.AsyncdlError)}
    assert hierarchy <= set(asyncdl.__all__)
    assert {"ProgressSink", "Event", "RunOptions", "Config", "Selection"} <= set(asyncdl.__all__)
    assert all(hasattr(asyncdl, name) for name in asyncdl.__all__)

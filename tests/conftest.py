"""Shared fixtures: emulators on free loopback ports, recorded Zenodo responses."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from asyncdl.emulator import EmulatorConfig, EmulatorThread, RunningEmulator

FIXTURES = Path(__file__).parent / "fixtures" / "zenodo-recorded"
INVENIO_FIXTURES = Path(__file__).parent / "fixtures" / "invenio-recorded"  # rogue-scholar.org, a stock instance


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., RunningEmulator]]:
    """Start emulators (each in its own thread and event loop); all are stopped after the test."""
    started: list[EmulatorThread] = []

    def start(config: EmulatorConfig | None = None, **kwargs: Any) -> RunningEmulator:
        thread = EmulatorThread(config or EmulatorConfig(), **kwargs)
        started.append(thread)
        return thread.start()

    yield start
    for thread in started:
        thread.stop()


def load_cassette(name: str, folder: Path = FIXTURES) -> list[dict[str, Any]]:
    """The interactions of a recorded vcrpy cassette."""
    data = yaml.safe_load((folder / name).read_text(encoding="utf-8"))
    return list(data["interactions"])


def cassette_json(interaction: dict[str, Any]) -> Any:
    return json.loads(interaction["response"]["body"]["string"])


def cassette_headers(interaction: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v[0] for k, v in interaction["response"]["headers"].items()}

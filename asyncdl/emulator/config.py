"""Everything the emulator can be told, with Zenodo's values as defaults."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from asyncdl.emulator.dataset import DatasetSpec
from asyncdl.emulator.faults import FaultConfig
from asyncdl.emulator.flavor import BY_NAME, INVENIO_LIMITS, Flavor, FlavorName

RangeMode = Literal["api", "ui", "both", "none"]
GENERIC_USER_AGENTS = ("python-requests", "aria2", "wget", "python-urllib", "go-http-client",
                       "okhttp", "libwww-perl")


@dataclass(frozen=True)
class EmulatorConfig:
    """The emulator's knobs. Times are in seconds; ``minute`` rescales every rate window.

    ``flavor="invenio"`` plays a stock InvenioRDM instance: its rate limits replace Zenodo's wherever the
    caller left them at Zenodo's values, and the server's ways follow :class:`~asyncdl.emulator.flavor.Flavor`.
    """

    flavor: FlavorName = "zenodo"
    host: str = "127.0.0.1"
    port: int = 0
    public_url: str | None = None
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    dataset_file: Path | None = None
    tokens: tuple[tuple[str, str], ...] = (("emulator-token", "88403"),)
    guest_page_size: int = 25
    auth_page_size: int = 100
    default_page_size: int = 25
    max_result_window: int = 10000
    archive_limit: int = 300_000_000
    search_files_limit: int = 100
    range_mode: RangeMode = "ui"
    rate_limits: bool = True
    rate_key: Literal["agent+ip", "ip"] = "agent+ip"  # who a budget belongs to: Zenodo's, or one per address
    minute: float = 60.0
    search_per_minute: int = 30
    guest_per_minute: int = 133
    guest_per_hour: int = 8000
    auth_per_minute: int = 100
    auth_per_hour: int = 5000
    html_429: bool = False
    block_generic_user_agents: bool = False
    faults: FaultConfig = field(default_factory=FaultConfig)
    chunk_size: int = 256 * 1024
    access_log: bool = False
    md5_cache: Path | None = None
    presign: bool = False  # downloads answer 302 to a signed URL of an object store on presign_host (invenio-s3)
    presign_host: str = "127.0.0.2"  # Linux routes all of 127/8 to loopback: a host of its own
    presign_expiry: float = 60.0  # seconds a signed URL is valid

    def __post_init__(self) -> None:
        if self.flavor not in BY_NAME:
            raise ValueError(f"unknown emulator flavor {self.flavor!r} (known: {', '.join(BY_NAME)})")
        if self.flavor == "invenio":
            zenodo = {f.name: f.default for f in fields(self)}
            for name, value in INVENIO_LIMITS.items():
                if getattr(self, name) == zenodo[name]:
                    object.__setattr__(self, name, value)

    @property
    def profile(self) -> Flavor:
        """The server's ways (ids, DOIs, page caps, JSON shape) for this flavor."""
        return BY_NAME[self.flavor]

    def user_for_token(self, token: str) -> str | None:
        return dict(self.tokens).get(token)

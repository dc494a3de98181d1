"""Config: every limit, timeout and size asyncdl uses, with a documented default."""

from __future__ import annotations

from dataclasses import dataclass, field

from asyncdl._version import __version__

DEFAULT_BASE_URL = "https://zenodo.org"
DEFAULT_DOI_RESOLVER = "https://doi.org"
DEFAULT_USER_AGENT = f"asyncdl/{__version__} (+https://github.com/asyncdl/asyncdl)"
MIN_CHUNK_SIZE = 1024  # smaller reads cost a system call per few bytes (and 0 would read nothing, forever)
GUEST_PAGE_SIZE = 25
TOKEN_PAGE_SIZE = 100

DEFAULT_HOST_CONNECTIONS = 8
AUTO = 0  # concurrency or segments "auto": found by trying, while the run goes (see asyncdl.tuning)
AUTO_HOST_CONNECTIONS = 16  # with -j auto: the most connections to one host, unless connections_per_host says
AUTO_SEGMENTS = 8  # with --segments auto: the most connections one large file may use


@dataclass(frozen=True)
class Config:
    """Settings of a run. Sizes in bytes, times in seconds. The token never appears in repr()."""

    base_url: str = DEFAULT_BASE_URL
    token: str | None = field(default=None, repr=False)  # sent to base_url's host only
    host_tokens: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (host, token): other instances'
    doi_resolver: str = DEFAULT_DOI_RESOLVER  # where a DOI that is not Zenodo's is looked up
    user_agent: str = DEFAULT_USER_AGENT
    # crawl
    page_size: int = 0  # 0: the largest the server allows (100 with a token, 25 without)
    page_concurrency: int = 8
    # transfer
    concurrency: int = AUTO  # files downloaded at once; AUTO: tuned while the run goes
    checkers: int = 2  # files hashed at once (adopting files already there), beside the downloads
    connections_per_host: int = 0  # 0: follow concurrency (at least DEFAULT_HOST_CONNECTIONS)
    chunk_size: int = 1024 * 1024
    segment_threshold: int = 512 * 1024 * 1024
    segments: int = AUTO  # connections for one large file; AUTO: as many as free download slots allow
    checkpoint_bytes: int = 32 * 1024 * 1024  # a segmented part's progress is made durable this often
    max_attempts: int = 5
    bwlimit: int = 0  # bytes a second of every download together (0: no cap)
    bwlimit_file: int = 0  # bytes a second of each file, its segments together (0: no cap)
    # requests
    retries: int = 8
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    max_rate_limit_waits: int = 100
    max_json_bytes: int = 64 * 1024 * 1024  # far above any record or page Zenodo sends (a few MB at most)
    connect_timeout: float = 30.0
    read_timeout: float = 60.0
    max_rate: float | None = None
    rate_share: float = 1.0
    # the run's brake: this many requests in a row with no progress, over at least this long, stop the run
    no_progress_requests: int = 300  # 0: no brake
    no_progress_seconds: float = 60.0

    @property
    def adaptive(self) -> bool:
        """Files at once are tuned while the run goes (``-j auto``)."""
        return self.concurrency == AUTO

    @property
    def adaptive_segments(self) -> bool:
        """A large file's connections follow the free download slots (``--segments auto``)."""
        return self.segments == AUTO

    @property
    def segment_count(self) -> int:
        """The most connections one large file uses (its pieces are cut for that many)."""
        return AUTO_SEGMENTS if self.adaptive_segments else self.segments

    @property
    def host_connections(self) -> int:
        """Most open connections to one host: as set, else as many as files at once (at least 8), so that
        ``-j N`` means N transfers at once; with ``-j auto``, AUTO_HOST_CONNECTIONS."""
        if self.connections_per_host:
            return self.connections_per_host
        return AUTO_HOST_CONNECTIONS if self.adaptive else max(DEFAULT_HOST_CONNECTIONS, self.concurrency)

    @property
    def effective_page_size(self) -> int:
        """The page size to ask for: never above the server's cap for this kind of client."""
        cap = TOKEN_PAGE_SIZE if self.token else GUEST_PAGE_SIZE
        return min(self.page_size, cap) if self.page_size > 0 else cap

"""RunOptions: what a mirror run does besides how it talks to the server (that is :class:`Config`).

The one value that ``mirror``, ``mirror_sync``, :class:`Run` and the command line share, so they
cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from asyncdl.errors import UsageError
from asyncdl.plan import DEFAULT_LAYOUT, Filters
from asyncdl.shard import Shard

ARCHIVE_MODES = ("never", "auto", "always")


def check_archive(mode: object) -> str:
    """``mode`` if it is one of :data:`ARCHIVE_MODES`, else a one-line UsageError."""
    if mode not in ARCHIVE_MODES:
        raise UsageError(f"archive must be one of {', '.join(ARCHIVE_MODES)}, not {mode!r}")
    return str(mode)


@dataclass(frozen=True)
class RunOptions:
    """Options of one mirror run.

    ``layout``: the path of each file under DEST (see the README's placeholders); ``include`` and
    ``exclude``: globs on file keys; ``max_file_size``: leave out larger files (None: no limit);
    ``archive``: when a record's files come as one files-archive request: "never", "auto" (when it saves
    requests and wastes little, see :mod:`asyncdl.transfer.archive_choice`) or "always" (every member is
    md5-checked either way);
    ``dry_run``: plan and report, fetch nothing; ``refresh``: crawl again although the journal knows the
    selection; ``since_last``: crawl only records updated since the last complete crawl; ``save_metadata``:
    write each record's JSON beside its files; ``relayout``: move the files DEST's journal finished under
    another layout to this one's places (without it a changed layout is refused); ``shard``: mirror only
    that shard's records, with a journal of its own (give it ``Config(rate_share=1 / shard.count)`` when
    the shards share an address).
    """

    layout: str = DEFAULT_LAYOUT
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_file_size: int | None = None
    archive: str = "auto"
    dry_run: bool = False
    refresh: bool = False
    since_last: bool = False
    save_metadata: bool = False
    relayout: bool = False
    shard: Shard | None = None

    def __post_init__(self) -> None:
        check_archive(self.archive)

    @property
    def filters(self) -> Filters:
        return Filters(self.include, self.exclude, self.max_file_size)

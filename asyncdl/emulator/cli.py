"""``asyncdl emulate``: run the local Zenodo/InvenioRDM server in the foreground."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from asyncdl.units import format_size, parse_size

if TYPE_CHECKING:
    from asyncdl.emulator.config import EmulatorConfig


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    try:
        return None if value is None else parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _span(text: str, convert: Callable[[str], int] = int) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    try:
        return convert(low), convert(high if sep else low)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: expected MIN-MAX, e.g. 1-5 or 1KiB-10MiB") from exc


def _rate(name: str, help_text: str) -> click.Option:
    return click.Option([f"--{name}"], type=click.FloatRange(0, 1), default=0.0, show_default=True,
                        help=help_text)


EPILOG = """\b
Examples:
  asyncdl emulate                                  # 60 records on http://127.0.0.1:8765
  asyncdl emulate --records 12000 --minute 2       # a 10k-window crawl with limits 30x faster
  asyncdl emulate --large-file 5GB --range both    # one 5 GB file, Range on every URL
  asyncdl emulate --flavor invenio                 # a stock InvenioRDM instance instead of zenodo.org
  asyncdl emulate --fault-reset 0.1 --fault-5xx 0.05 --fault-corrupt 0.02 --latency 0.05
  asyncdl emulate --presign --presign-expiry 5     # bytes from an S3-like store on 127.0.0.2
Counters of what was served: GET /_emulator/stats (reset with POST /_emulator/reset).
"""


@click.command(epilog=EPILOG)
@click.option("--flavor", type=click.Choice(["zenodo", "invenio"]), default="zenodo", show_default=True,
              help="Which server to play: zenodo.org, or a stock InvenioRDM instance (native JSON, 10-character "
                   "ids, relative parent redirects, native query fields, no page or archive caps, 500/1000 "
                   "requests a minute).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, help="Port to listen on (0 picks a free one).")
@click.option("--public-url", help="Base URL written into links (default: http://HOST:PORT).")
@click.option("--seed", default=0, show_default=True, help="Seed of the generated dataset and its file bytes.")
@click.option("--records", default=60, show_default=True, help="Number of concept records to generate.")
@click.option("--files-per-record", default="1-5", show_default=True, help="Files per record, MIN-MAX.")
@click.option("--file-size", default="200-256KiB", show_default=True,
              help="File sizes, MIN-MAX (log-uniform), e.g. 1KiB-10MiB.")
@click.option("--large-file", "large_files", multiple=True, callback=lambda c, p, v: tuple(parse_size(x) for x in v),
              help="Add one file of this size (e.g. 5GB) to a record; repeatable. Never stored: streamed.")
@click.option("--max-versions", default=3, show_default=True, help="Most versions a concept may have.")
@click.option("--min-versions", default=2, show_default=True, type=click.IntRange(min=2),
              help="Fewest versions of a concept with several.")
@click.option("--version-keeps", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of a version's files the next version keeps: the same stored files (same file id, "
                   "same bytes), as Zenodo's new versions do.")
@click.option("--multi-version-fraction", default=0.2, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of concepts with several versions.")
@click.option("--iodp-fraction", default=0.3, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of records owned by IODP (owner 88403), titled 'IODP Expedition N Analysis'.")
@click.option("--restricted-fraction", default=0.03, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of restricted records (403, absent from search).")
@click.option("--files-restricted-fraction", default=0.03, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of public records whose files are restricted (files: [] and 403).")
@click.option("--embargoed-fraction", default=0.02, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of records with embargoed files.")
@click.option("--deleted-fraction", default=0.02, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of concepts whose newest version was deleted (410).")
@click.option("--hostile-keys", is_flag=True,
              help="Give the first record file keys that try to escape DEST (../, /abs, backslashes...).")
@click.option("--dataset", "dataset_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Load records from a JSON file instead of generating them.")
@click.option("--token", "tokens", multiple=True, metavar="TOKEN[:USER]",
              help="Accept this access token (as user USER, default 88403); repeatable. "
                   "Default: emulator-token.")
@click.option("--guest-page-size", default=25, show_default=True,
              help="Largest page size without a token (zenodo flavor).")
@click.option("--auth-page-size", default=100, show_default=True,
              help="Largest page size with a token (zenodo flavor).")
@click.option("--max-result-window", default=10000, show_default=True,
              help="Hits reachable by paging; page*size beyond it answers 400.")
@click.option("--archive-limit", default="300000000", callback=_size, show_default=True,
              help="Largest record total for /files-archive (bytes); larger answers 400 (zenodo flavor).")
@click.option("--search-files-limit", default=100, show_default=True,
              help="Search hits of records with more files than this omit 'files' (fetch /files).")
@click.option("--range", "range_mode", type=click.Choice(["api", "ui", "both", "none"]), default="ui",
              show_default=True, help="Which download URLs honour Range: the API content URL, the "
                                      "/records/ID/files/KEY?download=1 URL, both or none (200 instead).")
@click.option("--no-rate-limits", is_flag=True, help="Serve without rate limits.")
@click.option("--minute", default=60.0, show_default=True,
              help="Length in seconds of a rate-limit 'minute' (an hour is 60 of them); shrink to scale time.")
@click.option("--search-per-minute", default=30, show_default=True,
              help="Search requests per minute (zenodo flavor; a stock instance counts searches with the rest).")
@click.option("--guest-per-minute", default=133, show_default=True,
              help="Other requests per minute, guests (invenio flavor: 500).")
@click.option("--guest-per-hour", default=8000, show_default=True,
              help="Other requests per hour, guests (invenio flavor: 5000).")
@click.option("--auth-per-minute", default=100, show_default=True,
              help="Other requests per minute, with token (invenio flavor: 1000).")
@click.option("--auth-per-hour", default=5000, show_default=True,
              help="Other requests per hour, with token (invenio flavor: 25000).")
@click.option("--html-429", is_flag=True, help="Answer 429 with the older HTML body instead of JSON.")
@click.option("--block-generic-user-agents", is_flag=True,
              help="Answer 403 with an HTML 'unusual traffic' page to python-requests, aria2, wget... .")
@click.option("--latency", default=0.0, show_default=True, help="Seconds added to every request.")
@click.option("--bandwidth", callback=_size, default="0", show_default=True,
              help="Per-connection cap on file bodies, bytes/s (e.g. 10MB); 0 = none.")
@click.option("--shared-bandwidth", callback=_size, default="0", show_default=True,
              help="Cap on all file bodies together, bytes/s, shared by every connection (e.g. 50MB); 0 = none.")
@click.option("--fault-reset", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Rate of file bodies cut by a connection reset.")
@click.option("--fault-5xx", "fault_5xx", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Rate of requests answered 500/502/503/504.")
@click.option("--fault-429", "fault_429", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Rate of requests answered 429 (Retry-After: 1) whatever the budget: a 429 storm.")
@click.option("--fault-429-burst-every", default=0.0, show_default=True,
              help="Every this many seconds, a burst in which every request is answered 429 (0 = none).")
@click.option("--fault-429-burst-seconds", default=1.0, show_default=True,
              help="How long each 429 burst lasts (Retry-After says what is left of it).")
@click.option("--fault-corrupt", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Rate of file bodies with one flipped byte (wrong md5).")
@click.option("--fault-stall", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Rate of file bodies that stop sending and hang.")
@click.option("--fault-truncate", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Rate of file bodies closed early (short of Content-Length).")
@click.option("--broken-date-ranges", is_flag=True,
              help="Searches with a created: range match nothing (a back end that reads such queries "
                   "otherwise), though the unsliced search states its hits.")
@click.option("--fault-expired", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="With --presign: rate of object-store requests refused as expired (403).")
@click.option("--fault-seed", default=0, show_default=True, help="Seed of fault decisions.")
@click.option("--fault-first-attempts", default=0, show_default=True,
              help="Inject faults only into the first N requests of each URL (0 = all).")
@click.option("--stall-seconds", default=3600.0, show_default=True, help="How long a stalled body hangs.")
@click.option("--chunk-size", callback=_size, default="256KiB", show_default=True, help="Write size for bodies.")
@click.option("--presign", is_flag=True,
              help="Answer downloads with 302 to a presigned URL of an S3-like object store on --presign-host "
                   "(as InvenioRDM on S3 storage does).")
@click.option("--presign-host", default="127.0.0.2", show_default=True,
              help="Address the object store listens on (a free port).")
@click.option("--presign-expiry", default=60.0, show_default=True, help="Seconds a presigned URL is valid.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Serve HTTPS with this certificate.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Private key for --tls-cert.")
@click.option("--access-log", is_flag=True, help="Log every request.")
@click.option("--md5-cache", type=click.Path(dir_okay=False, path_type=Path),
              help="Keep md5s of large generated files in this JSON file, so they are hashed only once.")
def emulate(**options: object) -> None:
    """Run a local Zenodo (InvenioRDM) server with generated records, for trying asyncdl offline.

    It answers like zenodo.org: the legacy and native JSON shapes, page-size caps, the 10,000-hit
    window, rate limits with their headers and 429s, Range quirks, restricted, deleted and
    embargoed records, and injected faults; or, with --flavor invenio, like a stock InvenioRDM
    instance. File bytes are generated from the seed, so files of
    any size cost no disk.
    """
    config = build_config(options)
    context = None
    if options.get("tls_cert"):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(options["tls_cert"]), str(options.get("tls_key") or options["tls_cert"]))
    asyncio.run(_serve(config, context))


class _Options:
    """Typed access to click's option values."""

    def __init__(self, raw: dict[str, object]) -> None:
        self.raw = raw

    def int(self, name: str) -> int:
        return int(str(self.raw[name]))

    def float(self, name: str) -> float:
        return float(str(self.raw[name]))

    def flag(self, name: str) -> bool:
        return bool(self.raw[name])

    def text(self, name: str) -> str | None:
        value = self.raw.get(name)
        return None if value is None else str(value)


def build_config(options: dict[str, object]) -> EmulatorConfig:
    """The EmulatorConfig for the command's options."""
    from asyncdl.emulator.config import EmulatorConfig
    from asyncdl.emulator.dataset import DatasetSpec
    from asyncdl.emulator.faults import FaultConfig

    o = _Options(options)
    raw_tokens = [str(t) for t in options.get("tokens") or ()]  # type: ignore[attr-defined]
    tokens = tuple((t.partition(":")[0], t.partition(":")[2] or "88403") for t in raw_tokens)
    large = tuple(int(x) for x in options.get("large_files") or ())  # type: ignore[attr-defined]
    dataset = DatasetSpec(
        seed=o.int("seed"), records=o.int("records"),
        files_per_record=_span(str(options["files_per_record"])),
        file_size=_span(str(options["file_size"]), parse_size), large_files=large,
        max_versions=o.int("max_versions"), min_versions=o.int("min_versions"),
        version_keeps=o.float("version_keeps"), multi_version_fraction=o.float("multi_version_fraction"),
        iodp_fraction=o.float("iodp_fraction"), restricted_fraction=o.float("restricted_fraction"),
        files_restricted_fraction=o.float("files_restricted_fraction"),
        embargoed_fraction=o.float("embargoed_fraction"), deleted_fraction=o.float("deleted_fraction"),
        hostile_keys=o.flag("hostile_keys"))
    faults = FaultConfig(
        seed=o.int("fault_seed"), latency=o.float("latency"), bandwidth=o.float("bandwidth"),
        shared_bandwidth=o.float("shared_bandwidth"),
        reset=o.float("fault_reset"), error_5xx=o.float("fault_5xx"), error_429=o.float("fault_429"),
        corrupt=o.float("fault_corrupt"),
        stall=o.float("fault_stall"), truncate=o.float("fault_truncate"), expired=o.float("fault_expired"),
        first_attempts=o.int("fault_first_attempts"), stall_seconds=o.float("stall_seconds"),
        burst_every=o.float("fault_429_burst_every"), burst_seconds=o.float("fault_429_burst_seconds"),
        broken_date_ranges=o.flag("broken_date_ranges"))
    dataset_file = o.text("dataset_file")
    range_mode = o.text("range_mode") or "ui"
    if range_mode not in ("api", "ui", "both", "none"):
        raise click.BadParameter(f"unknown range mode {range_mode!r}")
    flavor = o.text("flavor") or "zenodo"
    if flavor not in ("zenodo", "invenio"):
        raise click.BadParameter(f"unknown flavor {flavor!r}")
    return EmulatorConfig(
        flavor=flavor,  # type: ignore[arg-type]
        host=o.text("host") or "127.0.0.1", port=o.int("port"), public_url=o.text("public_url"),
        dataset=dataset, dataset_file=Path(dataset_file) if dataset_file else None,
        tokens=tokens or EmulatorConfig().tokens,
        guest_page_size=o.int("guest_page_size"), auth_page_size=o.int("auth_page_size"),
        max_result_window=o.int("max_result_window"), archive_limit=o.int("archive_limit"),
        search_files_limit=o.int("search_files_limit"), range_mode=range_mode,  # type: ignore[arg-type]
        rate_limits=not o.flag("no_rate_limits"), minute=o.float("minute"),
        search_per_minute=o.int("search_per_minute"), guest_per_minute=o.int("guest_per_minute"),
        guest_per_hour=o.int("guest_per_hour"), auth_per_minute=o.int("auth_per_minute"),
        auth_per_hour=o.int("auth_per_hour"), html_429=o.flag("html_429"),
        block_generic_user_agents=o.flag("block_generic_user_agents"), faults=faults,
        chunk_size=o.int("chunk_size"), access_log=o.flag("access_log"),
        md5_cache=Path(str(options["md5_cache"])) if options.get("md5_cache") else None,
        presign=o.flag("presign"), presign_host=o.text("presign_host") or "127.0.0.2",
        presign_expiry=o.float("presign_expiry"))


async def _serve(config: EmulatorConfig, context: ssl.SSLContext | None) -> None:
    from asyncdl.emulator.server import Emulator

    console = Console(stderr=True, soft_wrap=True)
    if config.access_log:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        emulator = Emulator(config, ssl_context=context)
    except (ValueError, KeyError, TypeError) as exc:  # a dataset file that does not say what the README shows
        problem = f"a record or file lacks the key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise click.ClickException(f"--dataset {config.dataset_file}: {problem}") from None
    running = await emulator.start()
    records = emulator.dataset.records.values()
    files = sum(len(r.files) for r in records)
    size = sum(r.total_bytes for r in records)
    scheme = "https" if context else "http"
    listening = f"{scheme}://{config.host}:{running.port}"
    console.print(f"asyncdl emulator: {len(emulator.dataset)} records, {files} files "
                  f"({format_size(size)}) at [bold]{running.url}[/bold]"
                  + (f" (listening on {listening})" if running.url != listening else ""))
    console.print(f"  flavor: {config.flavor}   tokens: {', '.join(t for t, _ in config.tokens)}   "
                  f"range: {config.range_mode}   "
                  f"rate limits: {'on' if config.rate_limits else 'off'} (minute = {config.minute:g} s)")
    if running.store is not None:
        console.print(f"  downloads: 302 to presigned URLs at {running.store_url} "
                      f"(valid {config.presign_expiry:g} s)")
    console.print(f"  try: asyncdl list --base-url {running.url} --owner 88403     (Ctrl-C to stop)")
    try:
        await asyncio.Event().wait()
    finally:
        await emulator.stop()

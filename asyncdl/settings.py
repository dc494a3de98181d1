"""Every setting declared once: its section, kind (type, bounds, parser), help, flag and environment name.

From these declarations come the TOML validation of config files, the ``ASYNCDL_*`` variables, the
command-line flags (:func:`flags_for`), ``config.example.toml`` (:func:`example`, checked by a test) and the
README check. A value is checked the same way wherever it comes from: a file, a variable or a flag.

Layers, later wins: defaults < the user config file < ``--config FILE`` < ``ASYNCDL_*`` < flags. Defaults
live in :class:`Config` and :class:`RunOptions` (for settings of the command line alone, here).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import click

from asyncdl import globs
from asyncdl.config import AUTO, MIN_CHUNK_SIZE, Config
from asyncdl.errors import ConfigError
from asyncdl.options import ARCHIVE_MODES, RunOptions
from asyncdl.progress import MODES
from asyncdl.units import exact_size, parse_size

ENV_PREFIX = "ASYNCDL_"


# -- kinds: what a value may be, checked alike from a file, a variable or a flag ----------------------------

def _whole(value: Any, least: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(what)
    return value


def _auto_or_whole(value: Any) -> int:
    """"auto" (AUTO, 0) or a whole number of at least 1."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return AUTO
    return _whole(value, 1, '"auto" or a whole number of at least 1')


def _port(value: Any) -> int:
    if _whole(value, 0, "a TCP port, 0 to 65535") > 65535:
        raise ValueError("a TCP port, 0 to 65535")
    return int(value)


def _read_int(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def _read_float(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError("a number, 0 or more")
    return float(value)


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def _duration(value: Any) -> float:
    """Seconds, or a text such as "6h", "90m", "1h30m", "45s", "2d"; 0: no limit."""
    what = 'a duration: seconds, or a text such as "6h", "90m" or "1h30m"'
    if isinstance(value, str):
        text = value.strip().lower()
        found = _DURATION.fullmatch(text) if text else None
        if found is None or not any(found.groups()):
            try:
                return _number(float(text))
            except ValueError:
                raise ValueError(what) from None
        days, hours, minutes, seconds = (float(part or 0) for part in found.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    try:
        return _number(value)
    except ValueError:
        raise ValueError(what) from None


def _size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError('a size: bytes, or a number with a unit such as "512MiB"')
    try:
        size = value if isinstance(value, int) else parse_size(value)
    except ValueError:
        raise ValueError('a size: bytes, or a number with a unit such as "512MiB"') from None
    if size < 0:
        raise ValueError("a size, 0 or more")
    return size


def _chunk(value: Any) -> int:
    size = _size(value)
    if size < MIN_CHUNK_SIZE:
        raise ValueError(f"a size of at least {MIN_CHUNK_SIZE} bytes")
    return size


MIN_BANDWIDTH = 1024  # bytes a second: below, a cap of "10" (bytes, not megabytes) would look like a hang


def _bandwidth(value: Any) -> int:
    rate = _size(value)
    if 0 < rate < MIN_BANDWIDTH:
        raise ValueError('a size a second: 0 (no cap) or at least 1KiB, e.g. "10MB"')
    return rate


def _fraction(value: Any) -> float:
    try:
        number = float(Fraction(value.strip())) if isinstance(value, str) else _number(value)
    except (ValueError, ZeroDivisionError, OverflowError):
        number = -1.0
    if not 0 < number <= 1:
        raise ValueError("a fraction above 0 and at most 1 (e.g. 0.25 or 1/4)")
    return number


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a string")
    return value


def _switch(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _read_switch(text: str) -> Any:
    return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(text.lower(), text)


def _globs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError('a list of strings, e.g. ["*.csv"]')
    return tuple(globs.check(v) for v in value)


def _mode(value: Any) -> str:
    if value not in MODES:
        raise ValueError(f"one of {', '.join(MODES)}")
    return str(value)


def _log_level(value: Any) -> str:
    if value not in ("debug", "info", "warning"):
        raise ValueError("one of debug, info, warning")
    return str(value)


def _archive(value: Any) -> str:
    if isinstance(value, bool):  # the switch of earlier releases: true took every record it could
        return "always" if value else "never"
    if value not in ARCHIVE_MODES:
        raise ValueError(f"one of {', '.join(ARCHIVE_MODES)}")
    return str(value)


@dataclass(frozen=True)
class Kind:
    """What a setting's value may be: ``check`` takes a value as a TOML file holds it and returns the
    setting's value, or raises ValueError saying what it must be; ``read`` turns a variable's or a flag's
    text into such a value first."""

    metavar: str
    check: Callable[[Any], Any]
    read: Callable[[str], Any] = str


COUNT = Kind("N", lambda v: _whole(v, 0, "a whole number, 0 or more"), _read_int)
PORT = Kind("PORT", lambda v: _port(v), _read_int)
POSITIVE = Kind("N", lambda v: _whole(v, 1, "a whole number of at least 1"), _read_int)
AUTO_OR_POSITIVE = Kind("N|auto", _auto_or_whole, _read_int)
NUMBER = Kind("SECONDS", _number, _read_float)
DURATION = Kind("DURATION", _duration)
POSITIVE_SECONDS = Kind("SECONDS", lambda v: _positive(_number(v)), _read_float)
SIZE = Kind("SIZE", _size, _read_int)
CHUNK = Kind("SIZE", _chunk, _read_int)
BANDWIDTH = Kind("SIZE", _bandwidth, _read_int)
FRACTION = Kind("FRACTION", _fraction)
TEXT = Kind("TEXT", _text)
SWITCH = Kind("", _switch, _read_switch)
GLOBS = Kind("GLOB", _globs, globs.split_list)
MODE = Kind("MODE", _mode)
LOG_LEVEL = Kind("LEVEL", lambda v: _log_level(v))
ARCHIVE = Kind("MODE", _archive)


def _positive(number: float) -> float:
    if number <= 0:
        raise ValueError("a number above 0")
    return number


# -- the declarations ----------------------------------------------------------------------------------------

SELECT = ("list", "get", "mirror")  # commands that take a selection
TRANSFER = ("get", "mirror")  # commands that download


@dataclass(frozen=True)
class Setting:
    """One setting: ``key`` in ``[section]`` of a config file, ``ASYNCDL_<KEY>`` in the environment, and
    ``flag`` on the command line of ``commands``. ``target`` says where its value goes: a :class:`Config`
    field, a :class:`RunOptions` field, or the command line itself ("cli", with its ``default`` here)."""

    section: str
    key: str
    kind: Kind
    help: str
    target: str = "config"
    flag: str | None = None
    short: str | None = None
    commands: tuple[str, ...] = ()
    name: str = ""  # the field it sets, when not ``key``
    default: Any = None  # for target "cli" only
    example: bool = True  # set in config.example.toml (else shown commented out)
    variable: str = ""  # the environment variable, when not ASYNCDL_<KEY>

    @property
    def field(self) -> str:
        return self.name or self.key

    @property
    def env(self) -> str:
        return self.variable or ENV_PREFIX + self.key.upper()

    @property
    def default_value(self) -> Any:
        if self.target == "config":
            return _default(Config, self.field)
        if self.target == "options":
            return _default(RunOptions, self.field)
        return self.default

    def parse(self, value: Any) -> Any:
        return self.kind.check(value)


def _default(cls: type, name: str) -> Any:
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    return field.default


SETTINGS: tuple[Setting, ...] = (
    # [connection]
    Setting("connection", "base_url", TEXT, "The InvenioRDM instance.", flag="--base-url", commands=SELECT),
    Setting("connection", "token_env", TEXT, "Where the personal access token comes from. Never put the token "
            "itself in a config file: name the environment variable that holds it, or a file (readable by you "
            "alone) that contains it. --token and ZENODO_TOKEN take precedence. With a token, search pages hold "
            "100 records instead of 25.", target="cli", default="ZENODO_TOKEN"),
    Setting("connection", "token_file", TEXT, "A file holding the token (instead of token_env).", target="cli",
            default="~/.config/asyncdl/token", example=False),
    Setting("connection", "doi_resolver", TEXT, "Where a DOI that is not Zenodo's (10.5281/zenodo.N) is looked "
            "up: its redirects lead to the instance that holds the record, and only there are requests sent."),
    Setting("connection", "user_agent", TEXT, "The User-Agent sent with every request. Zenodo asks for a "
            "descriptive one and has blocked generic ones."),
    # [crawl]
    Setting("crawl", "page_size", COUNT, "Records per search page; 0 means the largest the server allows "
            "(25 without a token, 100 with one)."),
    Setting("crawl", "page_concurrency", POSITIVE, "Search pages fetched at once (the request governor still "
            "keeps to the server's search budget).", flag="--page-concurrency", commands=SELECT),
    # [transfer]
    Setting("transfer", "concurrency", AUTO_OR_POSITIVE, "Files downloaded at once; auto: tuned while the run "
            "goes (starts at 4, a level up kept only when it brings 5% more bytes a second, backs off on 429s and "
            "stalls, at most --connections-per-host).", flag="--concurrency", short="-j", commands=TRANSFER),
    Setting("transfer", "checkers", POSITIVE, "Files hashed at once, beside the downloads: files already at their "
            "final name (from an earlier run, another tool or a copy) are adopted when their md5 matches, without "
            "holding a download slot."),
    Setting("transfer", "connections_per_host", COUNT, "Most open connections to one host, segments included "
            "(0: as many as --concurrency, at least 8, so -j N means N files at once; 16 with -j auto).",
            flag="--connections-per-host", commands=TRANSFER),
    Setting("transfer", "chunk_size", CHUNK, "Read and write size (at least 1KiB); also the most a killed run "
            "can lose per file (a resume starts after it).", flag="--chunk-size", commands=TRANSFER),
    Setting("transfer", "segment_threshold", SIZE, "Files at least this large are fetched in several segments "
            "at once when the server honours Range.", flag="--segment-threshold", commands=TRANSFER),
    Setting("transfer", "segments", AUTO_OR_POSITIVE, "Connections for one large file; 1 turns segmented "
            "downloads off; auto: its own download slot and each slot free (no other file waiting for it), up "
            "to 8.", flag="--segments", commands=TRANSFER),
    Setting("transfer", "checkpoint_bytes", SIZE, "A segmented download records its progress durably after "
            "this many bytes (a crash loses at most this much of it)."),
    Setting("transfer", "bwlimit", BANDWIDTH, "Bytes a second of every download together (e.g. 10MB; 0: no "
            "cap; at least 1KiB), as rclone's --bwlimit.", flag="--bwlimit", commands=TRANSFER),
    Setting("transfer", "bwlimit_file", BANDWIDTH, "Bytes a second of each file, its segments together (0: no cap).",
            flag="--bwlimit-file", commands=TRANSFER),
    Setting("transfer", "max_attempts", POSITIVE, "Downloads of a file from zero after checksum mismatches before it "
            "is reported failed.", flag="--max-attempts", commands=TRANSFER),
    # [requests]
    Setting("requests", "retries", COUNT, "Retries of a request after a 5xx, a connection error or a body that "
            "ends early, with growing waits; a try that gets further into the file than every earlier one "
            "starts the count again.", flag="--retries", commands=SELECT),
    Setting("requests", "backoff_base", NUMBER, "First wait before a retry, in seconds; each retry doubles it "
            "(with random jitter) up to backoff_max."),
    Setting("requests", "backoff_max", NUMBER, "The longest wait between two retries, in seconds."),
    Setting("requests", "connect_timeout", POSITIVE_SECONDS, "Seconds to establish a connection."),
    Setting("requests", "read_timeout", POSITIVE_SECONDS, "Seconds without a byte before a transfer counts as "
            "stalled and is resumed.", flag="--read-timeout", commands=TRANSFER),
    Setting("requests", "max_rate", NUMBER, "Your own cap on requests per second to one host (0 means none; the "
            "server's limits always apply)."),
    Setting("requests", "rate_share", FRACTION, "The fraction of the server's request budget (per address) this "
            "process may use: 0.5 for two machines behind one address, and so on (Zenodo counts requests per IP "
            "and User-Agent). Set anywhere, it applies to shards too; set nowhere, shard K/N of a mirror uses 1/N "
            "(a cluster's nodes usually reach the Internet through one address).", flag="--rate-share",
            commands=SELECT, example=False),
    Setting("requests", "max_rate_limit_waits", POSITIVE, "How many 429 answers in a row one request waits out "
            "before it is reported failed."),
    Setting("requests", "no_progress_requests", COUNT, "The run's brake: when this many requests in a row have "
            "brought no new bytes, no finished file and no record, for at least no_progress_seconds, the run "
            "stops with an error (exit code 1) instead of going on asking a server that is failing. Nothing is "
            "lost; the same command continues later. 0 turns it off."),
    Setting("requests", "no_progress_seconds", NUMBER, "See no_progress_requests."),
    Setting("requests", "max_json_bytes", SIZE, "The largest JSON answer (a record, a page) read; anything "
            "larger, or a gzip bomb, is refused."),
    # [files]
    Setting("files", "layout", TEXT, "Where each file goes under DEST. Placeholders: {id} {conceptrecid} {doi} "
            "{conceptdoi} {title} {key} {filename} {version} {created} {year}.", target="options",
            flag="--layout", commands=TRANSFER),
    Setting("files", "include", GLOBS, "Only files whose key matches one of these globs (empty: all); brace "
            "sets such as \"*.{csv,txt}\" work, and a glob with an unclosed [ or { is refused.",
            target="options", flag="--include", commands=TRANSFER),
    Setting("files", "exclude", GLOBS, "Never files whose key matches one of these globs.", target="options",
            flag="--exclude", commands=TRANSFER),
    Setting("files", "max_file_size", SIZE, "Leave out files larger than this (0: no limit).", target="options",
            flag="--max-file-size", commands=TRANSFER),
    Setting("files", "archive", ARCHIVE, "When a record's files come as one files-archive request instead of "
            "one request per file: never; auto (at least 3 files still to fetch, the record within the host's "
            "archive cap, 300 MB on Zenodo, the wanted bytes at least half the archive's, no file at the segment "
            "threshold); always (2 files or more, within the cap). Every member is checked against the "
            "record's md5; an archive that breaks off is asked for once more, then its files come one by one.",
            target="options", flag="--archive", commands=TRANSFER),
    # [progress]
    Setting("progress", "mode", MODE, "auto: bars on a terminal, plain log lines otherwise; rich; plain; json "
            "(one event per line on standard output); none.", target="cli", name="progress_mode", default="auto",
            flag="--progress", commands=(*TRANSFER, "demo"), variable="ASYNCDL_PROGRESS"),
    Setting("progress", "interval", POSITIVE_SECONDS, "Seconds between the status lines of the plain mode.",
            target="cli", name="progress_interval", default=10.0, variable="ASYNCDL_PROGRESS_INTERVAL"),
    Setting("progress", "grace", NUMBER, "On the first Ctrl-C or SIGTERM (or at --max-duration) no file starts "
            "any more, and the files in flight may finish for this many seconds before they are stopped (0: at "
            "once; a second signal always stops at once).", target="cli", default=10.0, flag="--grace",
            commands=TRANSFER, variable="ASYNCDL_GRACE"),
    Setting("progress", "max_duration", DURATION, "End the run cleanly after this long, as a first Ctrl-C would "
            "(e.g. 6h, 90m, 1h30m; 0: no limit); exit 130, resumable as always.", target="cli", default=0.0,
            flag="--max-duration", commands=TRANSFER, variable="ASYNCDL_MAX_DURATION"),
    # [metrics]
    Setting("metrics", "port", PORT, "Serve Prometheus metrics at http://ADDRESS:PORT/metrics while the run "
            "lasts (0: not served).", target="cli", name="metrics_port", default=0, flag="--metrics-port",
            commands=TRANSFER, variable="ASYNCDL_METRICS_PORT"),
    Setting("metrics", "address", TEXT, "The address the metrics are served on (0.0.0.0: every interface).",
            target="cli", name="metrics_address", default="127.0.0.1", flag="--metrics-address",
            commands=TRANSFER, variable="ASYNCDL_METRICS_ADDRESS"),
    Setting("metrics", "file", TEXT, "Rewrite this file with the metrics in Prometheus' text format every "
            "interval, and at the end (for node_exporter's textfile collector; \"\": none).", target="cli",
            name="metrics_file", default="", flag="--metrics-file", commands=TRANSFER,
            variable="ASYNCDL_METRICS_FILE"),
    Setting("metrics", "interval", POSITIVE_SECONDS, "Seconds between two rewrites of the metrics file.",
            target="cli", name="metrics_interval", default=15.0, variable="ASYNCDL_METRICS_INTERVAL"),
    # [log]
    Setting("log", "file", TEXT, "Append the run's log lines to this file (\"\": none), beside what the terminal "
            "shows.", target="cli", name="log_file", default="", flag="--log-file", commands=TRANSFER,
            variable="ASYNCDL_LOG_FILE"),
    Setting("log", "level", LOG_LEVEL, "What the log file gets: debug (every request, every fault before its "
            "retry), info (each file's result, pauses, notices), warning (failures and warnings).", target="cli",
            name="log_level", default="info", flag="--log-level", commands=TRANSFER, variable="ASYNCDL_LOG_LEVEL"),
    # [journal]
    Setting("journal", "save_metadata", SWITCH, "Write each record's JSON beside its files "
            "(zenodo-record-ID.json).", target="options", flag="--save-metadata", commands=TRANSFER),
    # [cluster]
    Setting("cluster", "shard_count", COUNT, "The number of shards of a mirror run as N workers (see "
            "docs/cluster.md). A Kubernetes Indexed Job needs it (JOB_COMPLETION_INDEX numbers the pod from 0); "
            "under a Slurm array it makes the task id the shard number (1..N), so failed tasks can be "
            "resubmitted alone. 0: not set (a Slurm array's size gives N; without a scheduler, the whole "
            "selection).", target="cli", default=0, flag="--shard-count", commands=("mirror",)),
)
BY_SECTION: dict[str, dict[str, Setting]] = {}
for _setting in SETTINGS:
    BY_SECTION.setdefault(_setting.section, {})[_setting.key] = _setting
BY_FIELD = {s.field: s for s in SETTINGS}


# -- reading the layers --------------------------------------------------------------------------------------

def user_config_path() -> Path:
    """The user's config file: $XDG_CONFIG_HOME/asyncdl/config.toml (~/.config), or macOS's place."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "asyncdl" / "config.toml"


HOSTS_SECTION = "hosts"
HOST_KEYS = ("token_env", "token_file")


def _host_tokens(path: Path, values: Any) -> dict[str, dict[str, str]]:
    """``[hosts."data.caltech.edu"]`` tables: where each other instance's token comes from (checked)."""
    if not isinstance(values, dict):
        raise ConfigError(f"[{HOSTS_SECTION}] in {path} must hold tables such as [hosts.\"data.caltech.edu\"]")
    hosts: dict[str, dict[str, str]] = {}
    for host, table in values.items():
        if not isinstance(table, dict) or not table:
            raise ConfigError(f"[hosts.\"{host}\"] in {path} must be a table with token_env or token_file")
        for key, value in table.items():
            if key not in HOST_KEYS:
                raise ConfigError(f"unknown setting hosts.\"{host}\".{key} in {path}; a host takes "
                                  f"{', '.join(HOST_KEYS)}")
            if not isinstance(value, str) or not value:
                raise ConfigError(f"hosts.\"{host}\".{key} in {path} must be a non-empty string, not {value!r}")
        hosts[host] = dict(table)
    return hosts


def read_file(path: Path) -> dict[str, Any]:
    """The settings in one config file (field -> value), each checked; ``[hosts."NAME"]`` tables go to
    ``host_tokens`` (host -> where its token comes from)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    settings: dict[str, Any] = {}
    for section, values in data.items():
        if section == HOSTS_SECTION:
            settings["host_tokens"] = _host_tokens(path, values)
            continue
        if section not in BY_SECTION:
            raise ConfigError(f"unknown section [{section}] in {path}; sections: "
                              f"{', '.join([*BY_SECTION, HOSTS_SECTION])}")
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] in {path} must be a table of settings")
        for key, value in values.items():
            setting = BY_SECTION[section].get(key)
            if setting is None:
                raise ConfigError(f"unknown setting {section}.{key} in {path}; "
                                  f"[{section}] takes {', '.join(BY_SECTION[section])}")
            try:
                settings[setting.field] = setting.parse(value)
            except ValueError as exc:
                raise ConfigError(f"{section}.{key} in {path} must be {exc}, not {value!r}") from None
    return settings


def read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings from ASYNCDL_<KEY> variables (e.g. ASYNCDL_CONCURRENCY=8, ASYNCDL_BASE_URL=...)."""
    settings: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env)
        if raw is None:
            continue
        try:
            settings[setting.field] = setting.parse(setting.kind.read(raw))
        except ValueError as exc:
            raise ConfigError(f"{setting.env} must be {exc}, not {raw!r}") from None
    return settings


def layered(config_file: Path | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings from the user config file, then ``config_file``, then the environment (later wins)."""
    settings: dict[str, Any] = {}
    user = user_config_path()
    if user.is_file():
        settings.update(read_file(user))
    if config_file is not None:
        settings.update(read_file(config_file))
    settings.update(read_environment(environ))
    return settings


def origins(config_file: Path | None, environ: Mapping[str, str]) -> list[tuple[Setting, Any, str]]:
    """Every setting's effective value and where it came from ("default", a file's path, a variable's name),
    the layers read as :func:`layered` reads them (later wins)."""
    found: dict[str, tuple[Any, str]] = {}
    user = user_config_path()
    for path in ([user] if user.is_file() else []) + ([config_file] if config_file is not None else []):
        found.update((name, (value, str(path))) for name, value in read_file(path).items() if name in BY_FIELD)
    environment = read_environment(environ)
    found.update((name, (value, BY_FIELD[name].env)) for name, value in environment.items())
    return [(s, *found.get(s.field, (s.default_value, "default"))) for s in SETTINGS]


def resolve_token(settings: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    """The token from the environment variable or file a config names (never from the config itself)."""
    if settings.get("token_env"):
        return environ.get(str(settings["token_env"])) or None
    if settings.get("token_file"):
        path = Path(str(settings["token_file"])).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {path}: {exc.strerror or exc}") from exc
    return None


def resolve_host_tokens(settings: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """(host, token) for every ``[hosts."NAME"]`` table whose variable or file gives a token."""
    found = []
    for host, where in (settings.get("host_tokens") or {}).items():
        token = resolve_token({"token_env": where.get("token_env"), "token_file": where.get("token_file")}, environ)
        if token:
            found.append((host, token))
    return tuple(found)


def value(settings: Mapping[str, Any], name: str) -> Any:
    """A setting's value: as the layers set it, else its default."""
    return settings[name] if name in settings else BY_FIELD[name].default_value


def _values(settings: Mapping[str, Any], target: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that go to ``target`` ("config" or "options"), ``fields`` over them; a 0 that means "no
    limit" (max_rate, max_file_size) becomes None."""
    values = {s.field: settings[s.field] for s in SETTINGS if s.target == target and s.field in settings}
    if target == "config" and "host_token_values" in settings:
        values["host_tokens"] = settings["host_token_values"]
    values.update(fields)
    for unlimited in ("max_rate", "max_file_size"):
        if unlimited in values:
            values[unlimited] = values[unlimited] or None
    return values


def config_from(settings: Mapping[str, Any], **fields: Any) -> Config:
    """The Config of these settings (``fields`` win: the token, say)."""
    return Config(**_values(settings, "config", fields))


def options_from(settings: Mapping[str, Any], **fields: Any) -> RunOptions:
    """The RunOptions of these settings (``fields``: the run's own, such as dry_run)."""
    return RunOptions(**_values(settings, "options", fields))


# -- the command line ----------------------------------------------------------------------------------------

def _shown(setting: Setting) -> str:
    default = setting.default_value
    if setting.kind is SWITCH:
        return "on" if default else "off"
    if setting.kind in (SIZE, CHUNK, BANDWIDTH) and isinstance(default, int) and default:
        return exact_size(default)
    if isinstance(default, tuple):
        return "none" if not default else ",".join(default)
    return shown_value(setting, default)


def shown_value(setting: Setting, value: Any) -> str:
    """A setting's value as a person reads it ("auto", "none", or the value)."""
    if setting.kind is AUTO_OR_POSITIVE:
        return "auto" if value == AUTO else str(value)
    return "none" if value in (None, 0) and setting.kind is not COUNT else str(value)


def _callback(setting: Setting) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def check(ctx: click.Context, param: click.Parameter, given: Any) -> Any:
        if given is None or given == ():
            return None  # not given: the lower layers (or the default) decide
        raw = list(given) if isinstance(given, tuple) else given
        try:
            return setting.parse(raw if isinstance(raw, bool | list) else setting.kind.read(raw))
        except ValueError as exc:
            shown = ", ".join(map(repr, given)) if isinstance(given, tuple) else repr(given)
            raise click.BadParameter(f"must be {exc}, not {shown}") from None
    return check


def flag(setting: Setting) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The click option of a setting (not given: None, so the layers below the flag decide)."""
    assert setting.flag is not None
    names = [n for n in (setting.short, setting.flag) if n]
    help_text = f"{setting.help} [default: {_shown(setting)}; {setting.env}]"
    if setting.kind is SWITCH:
        return click.option(*names, setting.field, is_flag=True, default=None, help=help_text,
                            callback=_callback(setting))
    multiple = setting.kind is GLOBS
    return click.option(*names, setting.field, default=None, multiple=multiple, metavar=setting.kind.metavar,
                        help=help_text, callback=_callback(setting))


def flags_for(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding the flags of every setting ``command`` takes."""
    chosen = [s for s in SETTINGS if s.flag and command in s.commands]

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        for setting in reversed(chosen):
            function = flag(setting)(function)
        return function
    return decorate


def given_flags(options: Mapping[str, Any]) -> dict[str, Any]:
    """The settings given as flags (those not given are None)."""
    return {s.field: options[s.field] for s in SETTINGS if s.field in options and options[s.field] is not None}


# -- the example file ----------------------------------------------------------------------------------------

def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if value is None:
        return "0"
    return repr(value)


def _wrapped(text: str, width: int = 106) -> Iterable[str]:
    line = "#"
    for word in text.split():
        if len(line) + 1 + len(word) > width:
            yield line
            line = "#"
        line += " " + word
    yield line


HOSTS_EXAMPLE = """
# [hosts."NAME"]: the token of another InvenioRDM instance (the token above is base_url's). A record URL or
# a DOI that leads to NAME is fetched from NAME with this token; no token goes to any other host.
# NAME is a host (https, port 443), host:port, or a URL.
# [hosts."data.caltech.edu"]
# token_env = "CALTECHDATA_TOKEN"
# token_file = "~/.config/asyncdl/caltechdata-token"
"""


def example() -> str:
    """config.example.toml: every setting with its default and what it does (a test keeps the file equal)."""
    lines = [line.rstrip() for line in EXAMPLE_HEADER.strip("\n").splitlines()]
    for section, settings in BY_SECTION.items():
        lines += ["", f"[{section}]"]
        for setting in settings.values():
            default = setting.default_value
            if setting.kind in (SIZE, CHUNK, BANDWIDTH) and isinstance(default, int) and default:
                shown = f'"{exact_size(default)}"'
            elif setting.kind is AUTO_OR_POSITIVE and default == AUTO:
                shown = '"auto"'
            else:
                shown = _toml(default)
            lines += list(_wrapped(setting.help))
            lines.append(f"{'' if setting.example else '# '}{setting.key} = {shown}")
    lines += ["", *HOSTS_EXAMPLE.strip("\n").splitlines()]
    return "\n".join(lines) + "\n"


EXAMPLE_HEADER = """
# asyncdl configuration: every setting, with its default and what it does.
# (Made by `python -m asyncdl.settings` from the declarations in asyncdl/settings.py.)
#
# Where asyncdl reads settings (later wins):
#   1. its defaults (the values below)
#   2. the user config file: ~/.config/asyncdl/config.toml ($XDG_CONFIG_HOME/asyncdl/config.toml;
#      ~/Library/Application Support/asyncdl/config.toml on macOS)
#   3. a file given with --config FILE
#   4. environment variables ASYNCDL_<SETTING>, e.g. ASYNCDL_CONCURRENCY=8, ASYNCDL_BASE_URL=...
#      (lists such as include are comma-separated: ASYNCDL_INCLUDE="*.csv,*.txt"; commas in braces stay)
#   5. command-line flags
# An unknown section or setting, or a value of the wrong type, stops asyncdl with an error naming it.
# Sizes are bytes or strings with a unit: "512MiB", "2GB". Settings shown commented out keep a default
# that depends on the run (rate_share: 1/N for shard K/N) or are alternatives (token_file).
"""


if __name__ == "__main__":
    sys.stdout.write(example())

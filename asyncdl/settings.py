"""Settings from files and the environment: defaults < user config < --config FILE < ASYNCDL_* < flags.

A config file is TOML with the sections of ``config.example.toml``. Unknown sections or keys and values
of the wrong type are ConfigErrors that name the key and the file. Sizes may be numbers of bytes or
strings such as "512MiB".
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from asyncdl.config import MIN_CHUNK_SIZE
from asyncdl.errors import ConfigError
from asyncdl.progress import MODES
from asyncdl.units import parse_size


def _size(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a size")
    return value if isinstance(value, int) else parse_size(str(value))


def _chunk_size(value: Any) -> int:
    size = _size(value)
    if size < MIN_CHUNK_SIZE:
        raise ValueError(f"a size of at least {MIN_CHUNK_SIZE} bytes")
    return size


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("a whole number of at least 1")
    return value


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("a whole number (0 or more)")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError("a number (seconds or a rate)")
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a string")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _globs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError('a list of strings, e.g. ["*.csv"]')
    return tuple(value)


def _share(value: Any) -> float:
    number = _number(value)
    if not 0 < number <= 1:
        raise ValueError("a fraction above 0 and at most 1")
    return number


def _mode(value: Any) -> str:
    if value not in MODES:
        raise ValueError(f"one of {', '.join(MODES)}")
    return str(value)


# section -> key -> (parser, setting name). The setting name is a Config field or a run option.
SCHEMA: dict[str, dict[str, tuple[Callable[[Any], Any], str]]] = {
    "connection": {"base_url": (_text, "base_url"), "token_env": (_text, "token_env"),
                   "token_file": (_text, "token_file"), "user_agent": (_text, "user_agent")},
    "crawl": {"page_size": (_count, "page_size"), "page_concurrency": (_positive_int, "page_concurrency")},
    "transfer": {"concurrency": (_positive_int, "concurrency"),
                 "connections_per_host": (_positive_int, "connections_per_host"),
                 "chunk_size": (_chunk_size, "chunk_size"), "segment_threshold": (_size, "segment_threshold"),
                 "segments": (_positive_int, "segments"), "max_attempts": (_positive_int, "max_attempts")},
    "requests": {"retries": (_positive_int, "retries"), "backoff_base": (_number, "backoff_base"),
                 "backoff_max": (_number, "backoff_max"), "connect_timeout": (_number, "connect_timeout"),
                 "read_timeout": (_number, "read_timeout"), "max_rate": (_number, "max_rate"),
                 "rate_share": (_share, "rate_share"), "max_rate_limit_waits": (_positive_int, "max_rate_limit_waits"),
                 "no_progress_requests": (_count, "no_progress_requests"),
                 "no_progress_seconds": (_number, "no_progress_seconds")},
    "files": {"layout": (_text, "layout"), "include": (_globs, "include"), "exclude": (_globs, "exclude"),
              "max_file_size": (_size, "max_file_size"), "archive": (_flag, "archive")},
    "progress": {"mode": (_mode, "progress_mode"), "interval": (_number, "progress_interval")},
    "journal": {"save_metadata": (_flag, "save_metadata")},
    "cluster": {"shard_count": (_count, "shard_count")},
}
ENV_PREFIX = "ASYNCDL_"


def user_config_path() -> Path:
    """The user's config file: $XDG_CONFIG_HOME/asyncdl/config.toml (~/.config), or the macOS/Windows place."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "asyncdl" / "config.toml"


def read_file(path: Path) -> dict[str, Any]:
    """The settings in one config file, checked against the schema."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    settings: dict[str, Any] = {}
    for section, values in data.items():
        if section not in SCHEMA:
            raise ConfigError(f"unknown section [{section}] in {path}; sections: {', '.join(SCHEMA)}")
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] in {path} must be a table of settings")
        for key, value in values.items():
            if key not in SCHEMA[section]:
                raise ConfigError(f"unknown setting {section}.{key} in {path}; "
                                  f"[{section}] takes {', '.join(SCHEMA[section])}")
            parser, name = SCHEMA[section][key]
            try:
                settings[name] = parser(value)
            except ValueError as exc:
                raise ConfigError(f"{section}.{key} in {path} must be {exc}, not {value!r}") from None
    return settings


def read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings from ASYNCDL_<KEY> variables (e.g. ASYNCDL_CONCURRENCY=8, ASYNCDL_BASE_URL=...)."""
    settings: dict[str, Any] = {}
    for section in SCHEMA.values():
        for key, (parser, name) in section.items():
            raw = environ.get(ENV_PREFIX + key.upper())
            if raw is None:
                continue
            value: Any = raw
            if parser in (_positive_int, _count):
                value = int(raw) if raw.isdigit() else raw
            elif parser in (_number, _share):
                try:
                    value = float(raw)
                except ValueError:
                    value = raw
            elif parser is _flag:
                value = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(
                    raw.lower(), raw)
            elif parser is _globs:
                value = [g for g in raw.split(",") if g]
            try:
                settings[name] = parser(value)
            except ValueError as exc:
                raise ConfigError(f"{ENV_PREFIX}{key.upper()} must be {exc}, not {raw!r}") from None
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

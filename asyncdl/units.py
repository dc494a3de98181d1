"""Human sizes and durations: parsing ("5GB", "256KiB") and formatting."""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """``"5GB"`` -> 5_000_000_000, ``"256KiB"`` -> 262144, ``"100"`` -> 100 bytes."""
    found = _SIZE.match(str(text))
    if not found or found.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (examples: 100, 16KiB, 300MB, 5GB)")
    return int(float(found.group(1)) * _UNITS[found.group(2).lower()])


def format_size(n: float) -> str:
    """Bytes in binary units with three significant digits, e.g. ``1.50 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def exact_size(n: int) -> str:
    """A size as it is best written in a config file: ``1MiB``, ``512MiB``, or plain bytes."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 record``, ``2 records`` (``many``: the plural when it is not ``noun + "s"``)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"

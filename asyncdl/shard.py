"""Shards: N independent workers (a Slurm array, a Kubernetes Indexed Job) split one selection by record.

There is no coordinator. Every worker crawls the whole selection and keeps the records whose id hashes to
its own part; the hash (SHA-256 of the id) is the same on every machine and every Python, and a record's
files stay together. Shards are numbered 1..N on the command line (``--shard 2/8``).

Where the shard comes from when ``--shard`` is not given (pure functions of the environment):

* Slurm: the task's position in its array, ``(SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / step + 1`` of
  ``SLURM_ARRAY_TASK_COUNT`` (else ``(MAX - MIN) / step + 1``); step from ``SLURM_ARRAY_TASK_STEP``, else
  derived from MIN, MAX and COUNT. With a shard count given, the task id itself is the shard number
  (1..N), so resubmitting some tasks (``sbatch --array=3,7``) keeps their shards.
* Kubernetes: ``JOB_COMPLETION_INDEX`` (0-based) + 1, of the shard count (required: the Job's completions).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from asyncdl.errors import UsageError

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
_JOURNAL = re.compile(r"journal-(\d+)-of-(\d+)\.sqlite")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``; ``origin`` says where it came from (for the log)."""

    index: int
    count: int
    origin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise UsageError(f"shard {self.index}/{self.count}{self._from()} does not exist: shards are numbered "
                             f"1 to N (N at least 1)")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def _from(self) -> str:
        return f" (from {self.origin})" if self.origin else ""

    def describe(self) -> str:
        """``shard 3/8 (from SLURM_ARRAY_TASK_ID=3 ...)``: the shard and where it came from, for the log."""
        return f"shard {self}{self._from()}"

    def includes(self, record_id: str) -> bool:
        """Whether this shard mirrors the record."""
        return part_of(record_id, self.count) == self.index - 1

    @property
    def suffix(self) -> str:
        """Names this shard's journal and lock (``-2-of-8``); empty for the whole selection (1/1)."""
        return "" if self.count == 1 else f"-{self.index}-of-{self.count}"


def part_of(record_id: str, count: int) -> int:
    """The 0-based part of ``count`` a record id falls in: stable across machines, runs and Pythons."""
    digest = hashlib.sha256(record_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse(text: str) -> Shard:
    """``"K/N"`` -> Shard(K, N)."""
    found = _SPEC.fullmatch(text)
    if found is None:
        raise UsageError(f"--shard takes K/N, e.g. 2/8 for the second of eight shards, not {text!r}")
    return Shard(int(found[1]), int(found[2]), origin=f"--shard {text.strip()}")


def from_journal_name(name: str) -> Shard | None:
    """The shard a journal file belongs to (``journal-2-of-8.sqlite``); None for ``journal.sqlite``."""
    found = _JOURNAL.fullmatch(name)
    return Shard(int(found[1]), int(found[2])) if found else None


def resolve(text: str | None, count: int | None, environ: Mapping[str, str], *,
            count_flagged: bool = True) -> Shard | None:
    """The shard of this run: ``--shard``, else Slurm's array variables, else Kubernetes' completion index;
    None when there is none (the whole selection). ``count`` is the shard count (None when not given);
    ``count_flagged``: it was given on the command line (a count from a config file or ASYNCDL_SHARD_COUNT
    outside a scheduler is not an error: the same settings serve plain runs too)."""
    if count is not None and count < 1:
        raise UsageError(f"the shard count must be at least 1, not {count}")
    if text is not None:
        shard = parse(text)
        if count is not None and count != shard.count:
            raise UsageError(f"--shard {shard} and a shard count of {count} disagree")
        return shard
    if "SLURM_ARRAY_TASK_ID" in environ:
        return from_slurm(environ, count)
    if "JOB_COMPLETION_INDEX" in environ:
        return from_kubernetes(environ, count)
    if count is not None and count > 1 and count_flagged:
        raise UsageError(f"a shard count ({count}) but no shard: pass --shard K/N, or run under a Slurm job "
                         "array (SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX)")
    return None


def from_slurm(environ: Mapping[str, str], count: int | None) -> Shard:
    """The shard of a Slurm array task (see the module docstring)."""
    task = _integer(environ, "SLURM_ARRAY_TASK_ID")
    if count is not None:
        return Shard(task, count, origin=f"SLURM_ARRAY_TASK_ID={task} of a shard count of {count}")
    first, last = _optional(environ, "SLURM_ARRAY_TASK_MIN"), _optional(environ, "SLURM_ARRAY_TASK_MAX")
    total, step = _optional(environ, "SLURM_ARRAY_TASK_COUNT"), _optional(environ, "SLURM_ARRAY_TASK_STEP")
    if first is None or (total is None and last is None):
        raise UsageError(f"SLURM_ARRAY_TASK_ID={task} but not SLURM_ARRAY_TASK_MIN with SLURM_ARRAY_TASK_COUNT "
                         "(or SLURM_ARRAY_TASK_MAX): cannot tell the number of shards; pass --shard-count N")
    if step is None:  # Slurm sets it; without it, a list such as 3,7 must not pass for a range
        step = 1
    if total is None and last is not None and step > 0:
        total = (last - first) // step + 1
    offset, rest = divmod(task - first, step) if step > 0 else (-1, 0)
    regular = total is not None and step > 0 and (last is None or first + (total - 1) * step == last)
    if not regular or rest or total is None or not 0 <= offset < total:
        raise UsageError(f"cannot tell which shard SLURM_ARRAY_TASK_ID={task} is in an array from {first} to "
                         f"{last} of {total} tasks (step {step}): submit a range such as --array=1-8, or pass "
                         "--shard-count N so that the task id is the shard number")
    return Shard(offset + 1, total, origin=f"SLURM_ARRAY_TASK_ID={task} in an array of {total} from {first}")


def from_kubernetes(environ: Mapping[str, str], count: int | None) -> Shard:
    """The shard of a pod of a Kubernetes Indexed Job: JOB_COMPLETION_INDEX (0-based) + 1 of ``count``."""
    index = _integer(environ, "JOB_COMPLETION_INDEX")
    if count is None:
        raise UsageError(f"JOB_COMPLETION_INDEX={index} but no shard count: pass --shard-count N or set "
                         "ASYNCDL_SHARD_COUNT (the Job's completions)")
    return Shard(index + 1, count, origin=f"JOB_COMPLETION_INDEX={index} of a shard count of {count}")


def _integer(environ: Mapping[str, str], name: str) -> int:
    """A whole-number variable that must be set."""
    raw = environ.get(name, "")
    if not raw.strip().isdigit():
        raise UsageError(f"{name}={raw!r} is not a whole number")
    return int(raw)


def _optional(environ: Mapping[str, str], name: str) -> int | None:
    """A whole-number variable, or None when it is not set."""
    return None if environ.get(name) is None else _integer(environ, name)

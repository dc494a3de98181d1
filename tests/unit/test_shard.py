"""Shards: parsing K/N, the scheduler's variables, and the partition itself."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncdl.errors import UsageError
from asyncdl.shard import Shard, from_journal_name, parse, part_of, resolve


def slurm(task: int, first: int, last: int | None = None, count: int | None = None,
          step: int | None = None) -> dict[str, str]:
    """The variables Slurm sets in an array task (those given)."""
    env = {"SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_MIN": str(first)}
    for name, value in (("MAX", last), ("COUNT", count), ("STEP", step)):
        if value is not None:
            env[f"SLURM_ARRAY_TASK_{name}"] = str(value)
    return env


@given(st.sets(st.text(min_size=1, max_size=12), max_size=60), st.integers(min_value=1, max_value=12))
def test_the_shards_of_n_split_any_ids_into_disjoint_parts_that_cover_them(ids: set[str], count: int) -> None:
    parts = [{i for i in ids if Shard(k, count).includes(i)} for k in range(1, count + 1)]
    assert set().union(*parts) == ids
    assert sum(len(p) for p in parts) == len(ids)  # no id in two parts


def test_the_partition_does_not_depend_on_the_process() -> None:
    """Python's hash() changes with PYTHONHASHSEED; the partition must not (every machine agrees)."""
    ids = [str(n) for n in range(10_000, 10_050)]
    code = f"from asyncdl.shard import part_of; print([part_of(i, 7) for i in {ids!r}])"
    seen = set()
    for seed in ("1", "2", "random"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        seen.add(out)
    assert seen == {f"{[part_of(i, 7) for i in ids]}\n"}


def test_records_spread_evenly_over_the_shards() -> None:
    ids = [str(n) for n in range(1, 30_001, 3)]
    sizes = [sum(1 for i in ids if part_of(i, 4) == k) for k in range(4)]
    assert min(sizes) > 0.9 * len(ids) / 4 and max(sizes) < 1.1 * len(ids) / 4


@pytest.mark.parametrize(("text", "index", "count"), [("2/3", 2, 3), (" 3 / 3 ", 3, 3), ("1/1", 1, 1)])
def test_parse(text: str, index: int, count: int) -> None:
    assert parse(text) == Shard(index, count)


@pytest.mark.parametrize(("text", "message"), [
    ("0/3", "shard 0/3 .* does not exist"), ("4/3", "shard 4/3 .* does not exist"),
    ("1/0", "shard 1/0 .* does not exist"), ("x/3", "--shard takes K/N"), ("2", "--shard takes K/N"),
    ("-1/3", "--shard takes K/N"), ("1/3/4", "--shard takes K/N"), ("1.5/3", "--shard takes K/N"),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(text)


def test_journal_names_round_trip() -> None:
    shard = Shard(2, 8)
    assert shard.suffix == "-2-of-8" and Shard(1, 1).suffix == ""
    assert from_journal_name(f"journal{shard.suffix}.sqlite") == shard
    assert from_journal_name("journal.sqlite") is None


@pytest.mark.parametrize(("env", "expected"), [
    (slurm(1, 1, 8, 8), Shard(1, 8)),  # --array=1-8
    (slurm(8, 1, 8, 8), Shard(8, 8)),
    (slurm(0, 0, 2, 3), Shard(1, 3)),  # --array=0-2
    (slurm(6, 5, 7, 3), Shard(2, 3)),  # --array=5-7
    (slurm(3, 1, 3), Shard(3, 3)),  # no COUNT: MAX - MIN + 1
    (slurm(5, 1, 15, 8, 2), Shard(3, 8)),  # --array=1-15:2 (1, 3, 5, ...)
    (slurm(4, 0, None, 3, 2), Shard(3, 3)),  # no MAX: COUNT and STEP
])
def test_slurm_array_tasks_map_to_their_position(env: dict[str, str], expected: Shard) -> None:
    assert resolve(None, None, env) == expected


@pytest.mark.parametrize(("env", "message"), [
    (slurm(4, 1, 9, 3), "cannot tell which shard SLURM_ARRAY_TASK_ID=4"),  # --array=1,4,9: a list, not a range
    (slurm(9, 1, 8, 8), "cannot tell which shard SLURM_ARRAY_TASK_ID=9"),  # outside the array
    (slurm(4, 1, 15, 8, 2), "cannot tell which shard SLURM_ARRAY_TASK_ID=4"),  # between two steps
    (slurm(3, 3, 7, 2), "cannot tell which shard SLURM_ARRAY_TASK_ID=3"),  # --array=3,7 without STEP: not 1/2
    (slurm(1, 1, 9, 3), "cannot tell which shard SLURM_ARRAY_TASK_ID=1"),  # --array=1,4,9: every task refuses
    ({"SLURM_ARRAY_TASK_ID": "3"}, "cannot tell the number of shards; pass --shard-count"),
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "8"}, "cannot tell the number of shards"),
    ({**slurm(1, 1, 8), "SLURM_ARRAY_TASK_ID": "one"}, "SLURM_ARRAY_TASK_ID='one' is not a whole number"),
    ({**slurm(1, 1, 8), "SLURM_ARRAY_TASK_COUNT": ""}, "SLURM_ARRAY_TASK_COUNT='' is not a whole number"),
])
def test_slurm_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve(None, None, env)


def test_with_a_count_the_slurm_task_id_is_the_shard_number() -> None:
    """Resubmitting the failed tasks of --array=1-8 as --array=3,7: MIN is 3 and COUNT 2 now, but with the
    count given, tasks 3 and 7 are still shards 3/8 and 7/8."""
    assert resolve(None, 8, slurm(3, 3, 7, 2)) == Shard(3, 8)
    assert resolve(None, 8, slurm(7, 3, 7, 2)) == Shard(7, 8)
    with pytest.raises(UsageError, match=r"shard 0/8 \(from SLURM_ARRAY_TASK_ID=0 .*\) does not exist"):
        resolve(None, 8, slurm(0, 0, 7, 8))


def test_kubernetes_completion_index() -> None:
    assert resolve(None, 3, {"JOB_COMPLETION_INDEX": "0"}) == Shard(1, 3)
    assert resolve(None, 3, {"JOB_COMPLETION_INDEX": "2"}) == Shard(3, 3)
    with pytest.raises(UsageError, match="JOB_COMPLETION_INDEX=1 but no shard count"):
        resolve(None, None, {"JOB_COMPLETION_INDEX": "1"})
    with pytest.raises(UsageError, match=r"shard 4/3 .* does not exist"):
        resolve(None, 3, {"JOB_COMPLETION_INDEX": "3"})


def test_precedence_and_conflicts() -> None:
    env = {**slurm(1, 1, 4, 4), "JOB_COMPLETION_INDEX": "2"}
    assert resolve("2/3", None, env) == Shard(2, 3)  # an explicit --shard overrides the environment
    assert resolve(None, None, env) == Shard(1, 4)  # Slurm before Kubernetes
    assert resolve(None, None, {}) is None
    assert resolve(None, 1, {}) is None  # one shard is the whole selection
    with pytest.raises(UsageError, match="--shard 2/3 and a shard count of 4 disagree"):
        resolve("2/3", 4, {})
    with pytest.raises(UsageError, match=r"a shard count \(4\) but no shard"):
        resolve(None, 4, {})
    assert resolve(None, 4, {}, count_flagged=False) is None  # a count from settings serves plain runs too


def test_the_origin_is_told_but_not_compared() -> None:
    shard = resolve(None, None, slurm(6, 5, 7, 3))
    assert shard is not None and shard.describe() == "shard 2/3 (from SLURM_ARRAY_TASK_ID=6 in an array of 3 from 5)"
    assert shard == parse("2/3")

"""Mutation testing of the lines that keep mirrors correct and secrets secret.

``python -m tests.mutation`` breaks the integrity and security code one small change at a time (a
comparison turned round, a condition negated, a number moved by one, a ``raise`` or a call removed, a
result dropped) and runs the tests that should notice. A mutant that no test notices *survives*: either a
test is missing, or the change cannot alter behaviour (an *equivalent* mutant, explained in EQUIVALENT).

    python -m tests.mutation --list              # the mutants, without running anything
    python -m tests.mutation                     # every group (about an hour on 2 cores)
    python -m tests.mutation --only path-safety  # one group; --report FILE writes the table as Markdown

Each worker runs in a copy of the repository with bytecode caching off, so the mutated source is what
runs, in the tests' subprocesses too (they inherit PYTHONPATH). Exit code 1 when a mutant survives
that is not listed as equivalent.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST = ("tests/unit/test_transfer_rules.py", "tests/integration/test_range_answers.py",
        "tests/integration/test_no_loops.py", "tests/integration/test_client.py")
TRANSFER = (*FAST, "tests/unit/test_properties.py", "tests/integration/test_hostile_server.py",
            "tests/integration/test_journal_upgrade.py", "tests/reliability/test_hostile_input.py",
            "tests/integration/test_archive.py", "tests/integration/test_transfer.py")


@dataclass(frozen=True)
class Group:
    """Functions of one module and the tests that guard them (fastest first: ``-x`` stops at the first)."""

    name: str
    module: str
    functions: tuple[str, ...]
    tests: tuple[str, ...]


GROUPS = (
    Group("range", "asyncdl/transfer/ranges.py",
          ("range_answer", "check_content_range", "RangeRoutes.url", "RangeRoutes.ignored", "RangeRoutes.missing"),
          TRANSFER),
    Group("ceiling", "asyncdl/transfer/ceiling.py", ("RequestCeiling.for_file", "RequestCeiling.spend"), TRANSFER),
    Group("single", "asyncdl/transfer/single.py",
          ("PartFile.open", "PartFile.handed", "PartFile.write", "PartFile.restart", "PartFile.problem",
           "SingleStream.attempt", "SingleStream._download", "SingleStream._request", "SingleStream._refuse_body",
           "SingleStream._too_much", "SingleStream._receive", "SingleStream._receive_small"), TRANSFER),
    Group("segmented", "asyncdl/transfer/segmented.py",
          ("split", "load_sidecar", "SegmentedPart.open", "SegmentedPart.write", "SegmentedPart.checkpoint",
           "SegmentedPart.hash_piece", "SegmentedDownload.attempt", "SegmentedDownload._pieces",
           "SegmentedDownload._segment"), (*TRANSFER, "tests/cli/test_resume.py")),
    Group("engine", "asyncdl/transfer/engine.py",
          ("Transfer.to_check", "Transfer.adopt", "Transfer.fetch", "Transfer._segmentable", "Transfer._attempts",
           "Transfer._accept", "Transfer._reject", "present", "already_there"), TRANSFER),
    Group("archive", "asyncdl/transfer/archive.py", ("unpack_member", "fetch_record_archive", "_fetch_zip"),
          TRANSFER),
    Group("archive-choice", "asyncdl/transfer/archive_choice.py",
          ("record_total", "ArchiveChoice.worth_it", "ArchiveChoice.refused"),
          ("tests/unit/test_archive_choice.py", "tests/integration/test_archive.py")),
    Group("copies", "asyncdl/transfer/copies.py", ("identities", "Copies.source_of", "Copies.emit", "make_copy"),
          ("tests/unit/test_copies_rules.py", "tests/integration/test_copies.py")),
    Group("writer", "asyncdl/transfer/writer.py",
          ("DiskWriter._run", "DiskWriter._wait", "DiskWriter.submit", "DiskWriter.flush", "DiskWriter.__aexit__"),
          TRANSFER),
    Group("commit-order", "asyncdl/transfer/commit.py", ("Committer.commit", "Committer.run", "commit_batch"),
          (*TRANSFER, "tests/integration/test_journal.py", "tests/reliability/test_crash_loop.py")),
    Group("retry", "asyncdl/http/retry.py", ("backoff", "Retry.ended_at", "Retry.spent", "Retry.after"), TRANSFER),
    Group("brake", "asyncdl/brake.py", ("Brake.progress", "Brake.problem", "Brake.request"), TRANSFER),
    Group("http", "asyncdl/http/client.py",
          ("host_of", "Client._headers", "Client._send", "Client.stream", "Client._judge", "Client.get_json"),
          (*FAST, "tests/integration/test_security.py", "tests/integration/test_hostile_server.py",
           "tests/integration/test_crawl.py", "tests/integration/test_transfer.py")),
    Group("response", "asyncdl/http/response.py", ("Response.chunks", "Response.read", "Response.json"),
          (*FAST, "tests/integration/test_hostile_server.py", "tests/integration/test_crawl.py")),
    Group("token-redaction", "asyncdl/redact.py", ("redact",),
          ("tests/unit/test_redact.py", "tests/integration/test_security.py")),
    Group("path-safety", "asyncdl/fsutil.py",
          ("SafeTargets.target", "SafeTargets._check_folder", "_within", "commit",
           "durable_rename", "remove_unowned", "fresh_opener", "open_fresh", "write_fresh"),
          ("tests/unit/test_safe_targets.py", "tests/reliability/test_hostile_input.py", *TRANSFER,
           "tests/integration/test_journal.py")),
    Group("names", "asyncdl/plan.py",
          ("Layout.plan", "Layout._distinct", "render", "sanitize_component", "shorten", "fold"),
          ("tests/unit/test_plan.py", "tests/reliability/test_hostile_input.py", "tests/unit/test_safe_targets.py")),
    Group("journal-writes", "asyncdl/store/journal.py",
          ("Journal._do", "Journal._planned", "Journal._done", "Journal._failed", "Journal.mark_done",
           "Journal.mark_failed", "Journal.reconcile", "Journal.note_partials", "JournalRecorder.emit"),
          ("tests/integration/test_journal.py", "tests/integration/test_journal_upgrade.py",
           "tests/integration/test_shard_journals.py", "tests/cli/test_resume.py")),
    Group("journal-versions", "asyncdl/store/schema.py", ("migrate",),
          ("tests/integration/test_journal_upgrade.py", "tests/integration/test_journal.py")),
    Group("sidecar", "asyncdl/store/sidecar.py", ("render", "read"),
          ("tests/integration/test_journal_upgrade.py", "tests/unit/test_properties.py", *TRANSFER)),
    Group("done-check", "asyncdl/pipeline.py", ("Run._done_before",),
          ("tests/integration/test_journal.py", "tests/cli/test_resume.py", "tests/integration/test_transfer.py")),
)

# (module, function, original, mutated) -> why no test can tell the mutant from the original
EQUIVALENT: dict[tuple[str, str, str, str], str] = {
    ("asyncdl/http/client.py", "Client._send", "response.release()", "pass"):
        "aiohttp gives a redirect's connection back itself: with one connection per host, the next hop gets "
        "through although the 302's 300 KB page was never read (tests/integration/test_client.py, aiohttp 3.14)",
    ("asyncdl/transfer/ceiling.py", "RequestCeiling.for_file", "0", "1"):
        "(size or 1) for a file of unknown or zero size: one progress unit either way, as '... or 1' gives",
    ("asyncdl/transfer/archive.py", "unpack_member", "True", "False"):
        "part.unlink(missing_ok=True) right after writing the part: it exists, so missing_ok cannot matter",
    ("asyncdl/transfer/single.py", "PartFile.problem", 'return f"size {self.offset} differs from the record\'s {size}"',
     "return None"):
        "unreachable: a download ends only at the record's size (shorter is retried, longer is refused first)",
    ("asyncdl/transfer/single.py", "SingleStream._request", "return False", "return None"):
        "the caller only tests the result for truth",
    ("asyncdl/transfer/single.py", "SingleStream._receive", "entry.size - part.offset <= INLINE_WRITE",
     "(entry.size - part.offset < INLINE_WRITE)"):
        "which of two correct ways a body of exactly INLINE_WRITE bytes is written",
    ("asyncdl/transfer/engine.py", "present", "return False", "return None"): "the callers test it for truth",
    ("asyncdl/transfer/segmented.py", "SegmentedDownload.attempt", "True", "False"):
        "a shield around anyio.to_thread.run_sync, which finishes the thread's call before any cancellation anyway",
    ("asyncdl/transfer/single.py", "SingleStream.attempt", "True", "False"):
        "a shield around anyio.to_thread.run_sync, which finishes the thread's call before any cancellation anyway",
    ("asyncdl/fsutil.py", "SafeTargets._check_folder", "self._checked.add(folder)", "pass"):
        "a cache of folders already checked: without it each is checked again, with the same answer",
    ("asyncdl/fsutil.py", "durable_rename", "os.fsync(stream.fileno())", "pass"):
        "durability against power loss: no test can cut the power (a SIGKILL keeps the page cache)",
    ("asyncdl/fsutil.py", "commit", "fsync_dir(final.parent)", "pass"):
        "durability against power loss: no test can cut the power (a SIGKILL keeps the page cache)",
    ("asyncdl/transfer/commit.py", "commit_batch", "folders.add(job.final.parent)", "pass"):
        "the folders to fsync: durability against power loss, which no test can cut",
    ("asyncdl/transfer/segmented.py", "SegmentedPart.checkpoint", "os.fsync(self._fd)", "pass"):
        "durability against power loss: no test can cut the power (a SIGKILL keeps the page cache)",
    ("asyncdl/store/journal.py", "Journal.reconcile", 'self.db.execute("BEGIN")', "pass"):
        "one transaction instead of one per statement: only a crash inside reconcile could tell them apart",
    ("asyncdl/store/journal.py", "Journal.note_partials", 'self.db.execute("BEGIN")', "pass"):
        "one transaction instead of one per statement: only a crash inside it could tell them apart",
    ("asyncdl/plan.py", "Layout.plan", "self._claimed.clear()", "pass"):
        "with {id} in the folders no two records share a path: the names claimed by earlier records never match",
    ("asyncdl/plan.py", "sanitize_component", 'return ""', "return None"):
        "the caller drops empty components by truth, and an empty file name becomes '_' either way",
    ("asyncdl/http/client.py", "Client._send", "True", "False"):
        "URL(url, encoded=False) re-quotes the URL, which changes only escapes of unreserved characters (%41 "
        "to A, %7E to ~): the same URL by RFC 3986 section 6.2.2.2; every other escape is kept as sent",
    ("asyncdl/transfer/copies.py", "make_copy", 'return "reflink copy"', "return None"):
        "no file system of the test machine takes FICLONE (a reflink): the copy that follows is tested instead",
    ("asyncdl/transfer/copies.py", "make_copy", "False", "True"):
        "os.link(follow_symlinks=...) of an origin just checked to be a regular file: only a race could tell",
    ("asyncdl/http/client.py", "Client.stream", "65536", "65537"):
        "how much of an error page is read for its message: one byte more of a page that the message cuts anyway",
    ("asyncdl/http/response.py", "Response.read", "256", "257"): "the chunk size of a JSON read: any size is right",
    ("asyncdl/http/response.py", "Response.read", "1024", "1025"): "the chunk size of a JSON read: any size is right",
    ("asyncdl/http/response.py", "Response.read", "0", "1"):
        "an answer without a stated length taken as 1 byte long: refused early only under a limit of 0, which "
        "max_json_bytes (at least 1) never is",
    ("asyncdl/pipeline.py", "Run._done_before", "return False", "return None"): "the caller tests it for truth",
}

_SWAPS: dict[type[ast.AST], type[ast.AST]] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.And: ast.Or, ast.Or: ast.And, ast.Add: ast.Sub, ast.Sub: ast.Add,
}


@dataclass(frozen=True)
class Mutant:
    module: str
    function: str
    line: int
    start: int  # byte offsets of the replaced text in the module's source
    end: int
    original: str
    mutated: str
    context: str  # the source line it is on

    def apply(self, source: bytes) -> bytes:
        return source[: self.start] + self.mutated.encode() + source[self.end:]

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.module, self.function, self.original, self.mutated)


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield f"{node.name}.{item.name}", item


def _inside_fstrings(function: ast.AST) -> set[int]:
    """ids of nodes inside f-strings (their positions cannot be trusted for replacement)."""
    return {id(inner) for node in ast.walk(function) if isinstance(node, ast.JoinedStr) for inner in ast.walk(node)}


def _swapped(node: ast.AST, attribute: str) -> str:
    """The node with its operator (``attribute``: op) turned round, as source."""
    changed = copy.deepcopy(node)
    setattr(changed, attribute, _SWAPS[type(getattr(node, attribute))]())
    return ast.unparse(changed)


def _variants(node: ast.AST) -> Iterator[str]:
    """Replacement texts for one node, by the mutation operators."""
    if isinstance(node, ast.Compare):
        for index, op in enumerate(node.ops):
            if type(op) in _SWAPS:
                changed = copy.deepcopy(node)
                changed.ops[index] = _SWAPS[type(op)]()  # type: ignore[call-overload]
                yield f"({ast.unparse(changed)})"
    elif isinstance(node, ast.BoolOp) or (isinstance(node, ast.BinOp) and type(node.op) in _SWAPS):
        yield f"({_swapped(node, 'op')})"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield f"({ast.unparse(node.operand)})"
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield str(not node.value)
    elif isinstance(node, ast.Constant) and isinstance(node.value, int):
        yield str(node.value + 1)
        if node.value:
            yield "0"
    elif isinstance(node, ast.Raise) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call | ast.Await)):
        yield "pass"
    elif isinstance(node, ast.Return) and node.value is not None and not (
            isinstance(node.value, ast.Constant) and node.value.value is None):
        yield "return None"
    elif isinstance(node, ast.AugAssign) and type(node.op) in _SWAPS:
        yield _swapped(node, "op")


def mutants(module: str, functions: tuple[str, ...]) -> list[Mutant]:
    source = (ROOT / module).read_bytes()
    tree = ast.parse(source)
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    found = dict(_functions(tree))
    missing = [name for name in functions if name not in found]
    if missing:
        raise SystemExit(f"{module} has no {', '.join(missing)} (update GROUPS)")
    result = []
    for name in functions:
        function = found[name]
        skip = _inside_fstrings(function)
        docstring = function.body[0] if ast.get_docstring(function) else None
        for node in ast.walk(function):
            if node is function or node is docstring or id(node) in skip or not isinstance(node, ast.expr | ast.stmt):
                continue
            assert node.end_lineno is not None and node.end_col_offset is not None
            start = line_starts[node.lineno - 1] + node.col_offset
            end = line_starts[node.end_lineno - 1] + node.end_col_offset
            original = source[start:end].decode()
            for text in _variants(node):
                if text != original:
                    context = source.splitlines()[node.lineno - 1].decode().strip()
                    result.append(Mutant(module, name, node.lineno, start, end, " ".join(original.split()), text,
                                         context))
    return result


@dataclass
class Outcome:
    mutant: Mutant
    verdict: str  # killed, survived, equivalent, timeout
    detail: str
    seconds: float


class Workspace:
    """A copy of the repository where one mutant at a time is written and tested."""

    def __init__(self, root: Path) -> None:
        self.root = root
        tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        for relative in tracked.splitlines():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / relative).is_file():
                shutil.copy2(ROOT / relative, target)
        self.env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
        where = subprocess.run([sys.executable, "-c", "import asyncdl; print(asyncdl.__file__)"], cwd=root,
                               env=self.env, capture_output=True, text=True, check=True).stdout.strip()
        if not where.startswith(str(root)):
            raise SystemExit(f"the copy's asyncdl is not the one imported ({where}): check PYTHONPATH")

    def run(self, mutant: Mutant, tests: tuple[str, ...], timeout: float) -> Outcome:
        path = self.root / mutant.module
        original = path.read_bytes()
        mutated = mutant.apply(original)
        began = time.monotonic()
        try:
            compile(mutated, str(path), "exec")
        except SyntaxError as exc:
            return Outcome(mutant, "invalid", str(exc), 0.0)
        path.write_bytes(mutated)
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                   f"--basetemp={self.root / '.pytest-tmp'}", *tests], cwd=self.root, env=self.env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Outcome(mutant, "timeout", f"tests ran past {timeout:.0f} s", time.monotonic() - began)
        finally:
            path.write_bytes(original)
        seconds = time.monotonic() - began
        if done.returncode == 0:
            reason = EQUIVALENT.get(mutant.key)
            return Outcome(mutant, "equivalent" if reason else "survived", reason or "", seconds)
        failed = re.search(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.MULTILINE)
        return Outcome(mutant, "killed", failed.group(1) if failed else f"pytest exit {done.returncode}", seconds)


def report(outcomes: list[Outcome]) -> str:
    lines = ["| verdict | where | function | line | original | mutated | by / why |",
             "|---|---|---|---|---|---|---|"]
    order = {"survived": 0, "timeout": 1, "equivalent": 2, "killed": 3, "invalid": 4}
    for o in sorted(outcomes, key=lambda o: (order[o.verdict], o.mutant.module, o.mutant.line)):
        cells = [o.verdict, f"{o.mutant.module}:{o.mutant.line}", o.mutant.function, f"`{o.mutant.context[:80]}`",
                 f"`{o.mutant.original[:60]}`", f"`{o.mutant.mutated[:60]}`", o.detail]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help=f"comma-separated groups: {', '.join(g.name for g in GROUPS)}")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--workers", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for one mutant's tests (default 300)")
    parser.add_argument("--report", type=Path, help="write the results table (Markdown) to this file")
    args = parser.parse_args(argv)
    wanted = {n.strip() for n in args.only.split(",")} if args.only else {g.name for g in GROUPS}
    unknown = wanted - {g.name for g in GROUPS}
    if unknown:
        parser.error(f"unknown group {', '.join(sorted(unknown))}")
    jobs = [(m, g.tests) for g in GROUPS if g.name in wanted for m in mutants(g.module, g.functions)]
    if args.list:
        for mutant, _ in jobs:
            print(f"{mutant.module}:{mutant.line} {mutant.function}: {mutant.original[:70]!r} -> {mutant.mutated!r}")
        print(f"{len(jobs)} mutants")
        return 0
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="asyncdl-mutation-") as scratch:
        spaces = [Workspace(Path(scratch) / f"w{i}") for i in range(max(1, args.workers))]
        free = list(spaces)

        def test(job: tuple[Mutant, tuple[str, ...]]) -> None:
            with lock:
                space = free.pop()
            try:
                outcome = space.run(job[0], job[1], args.timeout)
            finally:
                with lock:
                    free.append(space)
            with lock:
                outcomes.append(outcome)
                m = outcome.mutant
                print(f"[{len(outcomes)}/{len(jobs)}] {outcome.verdict:10} {m.module}:{m.line} {m.function}: "
                      f"{m.original[:50]!r} -> {m.mutated[:40]!r} {outcome.detail} ({outcome.seconds:.0f} s)",
                      flush=True)

        with ThreadPoolExecutor(len(spaces)) as pool:
            list(pool.map(test, jobs))
    table = report(outcomes)
    if args.report:
        args.report.write_text(table)
    counts = {v: sum(1 for o in outcomes if o.verdict == v) for v in ("killed", "timeout", "equivalent", "survived")}
    print(", ".join(f"{n} {v}" for v, n in counts.items()))
    for o in outcomes:
        if o.verdict == "survived":
            print(f"SURVIVED {o.mutant.module}:{o.mutant.line} {o.mutant.function}: {o.mutant.original!r} -> "
                  f"{o.mutant.mutated!r} in: {o.mutant.context}")
    return 1 if counts["survived"] else 0


if __name__ == "__main__":
    sys.exit(main())

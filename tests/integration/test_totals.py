"""Totals reconciled: a listing or mirror whose pages give fewer records than the server stated says so with
both numbers, keeps what it found and fails; records deleted while it ran are told apart."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

from asyncdl import Config, RunOptions, Selection, ShortCrawlError, crawl_records, mirror
from asyncdl.events import CrawlShort, ListSink, Notice
from tests.scripted import Script, ScriptedServer

pytestmark = pytest.mark.anyio
RECORDS = range(1, 41)
HIDDEN = frozenset({7, 19, 33})


def scripts() -> dict[int, Script]:
    return {rid: Script(body=f"file of record {rid}".encode()) for rid in RECORDS}


def config_for(base: str) -> Config:
    return Config(base_url=base, backoff_base=0.01, backoff_max=0.05, page_concurrency=4)


async def test_pages_short_of_the_stated_total_raise_with_both_numbers_and_the_records() -> None:
    async with ScriptedServer(scripts(), hidden=HIDDEN).running() as server:
        sink = ListSink()
        with pytest.raises(ShortCrawlError) as raised:
            await crawl_records(Selection(query="title:Record"), config_for(server.base), sink=sink)
    assert "stated 40 records" in str(raised.value) and "gave 37" in str(raised.value)
    assert sorted(int(r.id) for r in raised.value.records) == sorted(set(RECORDS) - HIDDEN)
    shorts = [e for e in sink.events if isinstance(e, CrawlShort)]
    assert [(s.stated, s.reached, s.now) for s in shorts] == [(40, 37, 40)]
    assert server.served["search"] == 2 + 1  # two pages, then the total asked again once


async def test_records_deleted_while_crawling_are_not_a_shortfall() -> None:
    async with ScriptedServer(scripts(), hidden=HIDDEN, vanish=True).running() as server:
        sink = ListSink()
        records = await crawl_records(Selection(query="title:Record"), config_for(server.base), sink=sink)
    assert len(records) == 37
    assert not any(isinstance(e, CrawlShort) for e in sink.events)
    assert any(isinstance(e, Notice) and "3 records left the search" in e.message for e in sink.events)


async def test_a_complete_search_costs_no_recount() -> None:
    async with ScriptedServer(scripts()).running() as server:
        records = await crawl_records(Selection(query="title:Record"), config_for(server.base))
    assert len(records) == 40 and server.served["search"] == 2


async def test_mirror_of_a_short_selection_downloads_what_it_found_and_fails(tmp_path: Path) -> None:
    async with ScriptedServer(scripts(), hidden=HIDDEN).running() as server:
        summary = await mirror(Selection(query="title:Record"), tmp_path, config_for(server.base),
                               options=RunOptions(archive="never"))
        assert summary.counts["ok"] == 37 and summary.exit_code == 1
        assert [(s.stated, s.reached) for s in summary.shortfalls] == [(40, 37)]
        # the short list is not trusted next time: the selection is crawled again
        searches = server.served["search"]
        again = await mirror(Selection(query="title:Record"), tmp_path, config_for(server.base),
                             options=RunOptions(archive="never"))
        assert server.served["search"] > searches and again.exit_code == 1 and again.counts["skipped"] == 37


def test_list_writes_the_rows_it_has_and_exits_1(tmp_path: Path) -> None:
    import anyio

    async def scenario() -> subprocess.CompletedProcess[str]:
        async with ScriptedServer(scripts(), hidden=HIDDEN).running() as server:
            out = tmp_path / "l.csv"
            return await anyio.to_thread.run_sync(lambda: subprocess.run(
                [sys.executable, "-m", "asyncdl", "list", "--base-url", server.base, "--query", "title:Record",
                 "-o", str(out)], capture_output=True, text=True, timeout=120))

    result = anyio.run(scenario)
    assert result.returncode == 1, result.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "l.csv").read_text(encoding="utf-8"))))
    assert len(rows) == 37
    assert "37 rows written" in result.stderr
    assert "stated 40 records" in result.stderr and "gave 37" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_file_listing_short_of_the_stated_count_is_reported() -> None:
    from aiohttp import web

    from tests.http_helpers import serve

    def entry(key: str) -> dict[str, object]:
        return {"key": key, "size": 1, "checksum": "md5:0cc175b9c0f1b6a831c399e269772661", "status": "completed"}

    async def record(request: web.Request) -> web.Response:
        return web.json_response({"id": "abcde-12345", "created": "2024-01-01T00:00:00+00:00",
                                  "metadata": {"title": "Three files"}, "access": {"record": "public",
                                                                                    "files": "public"},
                                  "files": {"enabled": True, "count": 3, "entries": {"a": entry("a")}}})

    async def listing(request: web.Request) -> web.Response:
        return web.json_response({"enabled": True, "entries": [entry("a"), entry("b")]})

    app = web.Application()
    app.router.add_get("/api/records/abcde-12345", record)
    app.router.add_get("/api/records/abcde-12345/files", listing)
    async with serve(app) as base:
        with pytest.raises(ShortCrawlError, match="record abcde-12345: the server stated 3 files, its listing gave 2"):
            await crawl_records(Selection(identifiers=("abcde-12345",)), config_for(base))


async def test_every_shard_of_a_short_shared_crawl_is_told(tmp_path: Path) -> None:
    from asyncdl import Shard

    async with ScriptedServer(scripts(), hidden=HIDDEN).running() as server:
        first = await mirror(Selection(query="title:Record"), tmp_path, config_for(server.base),
                             options=RunOptions(archive="never", shard=Shard(1, 2)))
        searches = server.served["search"]
        second = await mirror(Selection(query="title:Record"), tmp_path, config_for(server.base),
                              options=RunOptions(archive="never", shard=Shard(2, 2)))
    assert server.served["search"] == searches  # the second shard read the shared crawl
    for summary in (first, second):
        assert summary.exit_code == 1 and [(s.stated, s.reached) for s in summary.shortfalls] == [(40, 37)]
    assert first.counts["ok"] + second.counts["ok"] == 37

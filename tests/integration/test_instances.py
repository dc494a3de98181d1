"""The identifier names the instance: a record URL on another host is fetched there, a DOI from where its
resolver leads, and each token goes only to the host it is configured for."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from asyncdl import Config, RunOptions, Selection, UsageError, crawl_records, mirror
from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from tests.datasets import record
from tests.http_helpers import serve

Start = Callable[..., RunningEmulator]
pytestmark = pytest.mark.anyio


def instance_b() -> Dataset:
    return Dataset([record(501, concept=500, title="Open on B", files={"b.txt": b"bee\n"}),
                    record(511, concept=510, title="Closed files on B", files={"secret.txt": b"only for 5\n"},
                           access="files-restricted", owners=("5",))])


def start_two(start: Start) -> tuple[RunningEmulator, RunningEmulator]:
    """A (the configured base URL, token 'emulator-token') and B (knows only 'b-token', of user 5): a token
    of A that reached B would be refused there with a 401, which stops the run."""
    a = start(EmulatorConfig(rate_limits=False), dataset=Dataset([record(11, concept=10, files={"a.txt": b"a\n"})]))
    b = start(EmulatorConfig(rate_limits=False, tokens=(("b-token", "5"),)), dataset=instance_b())
    return a, b


async def test_a_record_url_on_another_host_is_fetched_there_without_a_token(start_emulator: Start,
                                                                              tmp_path: Path) -> None:
    a, b = start_two(start_emulator)
    config = Config(base_url=a.url, token="emulator-token")
    summary = await mirror(Selection(identifiers=(f"{b.url}/records/501", f"{b.url}/records/511", "11")),
                           tmp_path, config, options=RunOptions(archive="never"))
    assert (tmp_path / "501" / "b.txt").read_bytes() == b"bee\n"
    assert (tmp_path / "11" / "a.txt").read_bytes() == b"a\n"  # A's own record, with A's token
    assert summary.counts["ok"] == 2
    assert [rid for rid, _ in summary.inaccessible] == ["511"]  # B's closed files: no token for B
    assert b.stats.statuses[401] == 0 and a.stats.requests["record"] == 1
    assert "record" in b.stats.requests and "content" in b.stats.requests


async def test_a_token_configured_for_a_host_goes_there_and_nowhere_else(start_emulator: Start,
                                                                         tmp_path: Path) -> None:
    a, b = start_two(start_emulator)
    host = b.url.removeprefix("http://")
    config = Config(base_url=a.url, token="emulator-token", host_tokens=((host, "b-token"),))
    summary = await mirror(Selection(identifiers=(f"{b.url}/records/511", "11")), tmp_path, config,
                           options=RunOptions(archive="never"))
    assert (tmp_path / "511" / "secret.txt").read_bytes() == b"only for 5\n"  # b-token reached B
    assert summary.exit_code == 0 and summary.counts["ok"] == 2  # and emulator-token reached A, not B
    assert a.stats.statuses[401] == 0 and b.stats.statuses[401] == 0


def resolver_app(locations: dict[str, str], seen: Counter[str], landing_link: str = "") -> web.Application:
    """A DOI resolver on loopback: /DOI answers 302 to its location; /landing is a page with a Link header."""
    async def resolve(request: web.Request) -> web.StreamResponse:
        seen[request.path] += 1
        if "Authorization" in request.headers:
            seen["authorization"] += 1
        doi = request.match_info["doi"]
        if doi == "landing":
            return web.Response(text="<html>landing</html>", content_type="text/html",
                                headers={"Link": landing_link})
        if doi not in locations:
            return web.json_response({"responseCode": 404, "handle": doi}, status=404)
        return web.Response(status=302, headers={"Location": locations[doi]})

    app = web.Application()
    app.router.add_get("/{doi:.+}", resolve)
    return app


async def test_a_doi_leads_to_the_instance_that_holds_the_record(start_emulator: Start) -> None:
    a, b = start_two(start_emulator)
    seen: Counter[str] = Counter()
    link = f'<{b.url}/api/records/511>; rel="linkset"; type="application/linkset+json"'
    async with serve(resolver_app({"10.9999/b.501": f"{b.url}/records/501", "10.9999/b.511": "/landing"},
                                  seen, link)) as resolver:
        config = Config(base_url=a.url, token="emulator-token", doi_resolver=resolver)
        found = await crawl_records(Selection(identifiers=("10.9999/b.501", "doi:10.9999/b.511")), config)
        assert [(r.id, r.api_url) for r in found] == [("501", f"{b.url}/api/records/501"),
                                                      ("511", f"{b.url}/api/records/511")]
        with pytest.raises(UsageError, match=r"DOI 10.9999/nope is unknown to .* \(404\)"):
            await crawl_records(Selection(identifiers=("10.9999/nope",)), config)
    assert seen["authorization"] == 0 and sum(a.stats.requests.values()) == 0  # nothing went to A
    assert b.stats.requests["record"] == 2 and b.stats.statuses[401] == 0


async def test_a_doi_leading_to_no_record_is_a_clear_error(start_emulator: Start) -> None:
    seen: Counter[str] = Counter()
    async with serve(resolver_app({"10.9999/x": "/landing"}, seen)) as resolver:
        with pytest.raises(UsageError, match="which is no InvenioRDM record"):
            await crawl_records(Selection(identifiers=("10.9999/x",)), Config(doi_resolver=resolver))


def test_get_a_record_url_without_base_url(start_emulator: Start, tmp_path: Path) -> None:
    """`asyncdl get <URL>` as a user types it: no --base-url, and nothing is asked of zenodo.org."""
    _, b = start_two(start_emulator)
    result = subprocess.run([sys.executable, "-m", "asyncdl", "get", f"{b.url}/records/501", "-o", str(tmp_path),
                             "--archive", "never"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "501" / "b.txt").read_bytes() == b"bee\n"

"""Downloads redirected to presigned object-store URLs (InvenioRDM on S3 storage), over real HTTP: the store
sees no credential, refuses as S3 does, and resumes, segments and expired signatures all end verified."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from asyncdl import Config, RunOptions, Selection
from asyncdl.emulator import Dataset, Emulator, EmulatorConfig, FaultConfig, RunningEmulator
from asyncdl.events import FaultMet, ListSink
from asyncdl.http import Client
from asyncdl.pipeline import mirror
from tests.datasets import record
from tests.http_helpers import serve

Start = Callable[..., RunningEmulator]
pytestmark = pytest.mark.anyio
TOKEN = "emulator-token"


def dataset(access: str = "open", **sizes: int) -> Dataset:
    files: dict[str, bytes | int] = {"small.csv": b"a,b\n1,2\n", **{f"{k}.bin": v for k, v in sizes.items()}}
    return Dataset([record(11, concept=10, owners=("88403",), files=files, access=access)])


def config_for(emu: RunningEmulator, **overrides: object) -> Config:
    return Config(base_url=emu.url, backoff_base=0.02, backoff_max=0.2, read_timeout=5.0,
                  **overrides)  # type: ignore[arg-type]


def assert_verified(emu: RunningEmulator, dest: Path) -> None:
    for spec in emu.dataset.records[11].files:
        got = hashlib.md5((dest / "11" / spec.key).read_bytes()).hexdigest()
        assert got == emu.dataset.file_md5(spec), spec.key
    assert not list(dest.rglob("*.asyncdl-part"))


def redirects(emu: RunningEmulator) -> int:
    """Downloads the instance answered with a fresh signature (302 from its content routes)."""
    return emu.stats.statuses[302]


async def signed_url(emu: RunningEmulator, key: str = "big.bin") -> str:
    async with aiohttp.ClientSession() as session, \
            session.get(f"{emu.url}/api/records/11/files/{key}/content", allow_redirects=False) as answer:
        assert answer.status == 302
        return answer.headers["Location"]


async def test_a_token_mirror_sends_no_credential_to_the_store(start_emulator: Start, tmp_path: Path) -> None:
    """The files are restricted to their owner: only the token (which the instance saw) downloads them."""
    emu = start_emulator(EmulatorConfig(presign=True, rate_limits=False),
                         dataset=dataset("files-restricted", big=3_000_000))
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, config_for(emu, token=TOKEN))
    assert [f.reason for f in summary.failed] == []
    assert_verified(emu, tmp_path)
    store = emu.store_stats
    assert store.requests >= 2 and store.statuses[200] >= 2
    assert store.credentials_seen == 0
    assert redirects(emu) == store.requests


async def test_the_store_refuses_as_s3_does(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(presign=True, rate_limits=False, presign_expiry=0.3),
                         dataset=dataset(big=100_000))
    url = await signed_url(emu)
    assert url.startswith(emu.store_url) and "X-Amz-Signature=" in url
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Range": "bytes=10-"}) as answer:
            assert answer.status == 206 and answer.headers["Content-Range"] == "bytes 10-99999/100000"
            assert len(await answer.read()) == 99_990
        async with session.head(url) as answer:
            assert answer.status == 403
        async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as answer:
            assert answer.status == 400
            assert "<Code>InvalidArgument</Code>" in await answer.text()
            assert "Only one auth mechanism allowed" in await answer.text()
        async with session.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0")) as answer:
            assert answer.status == 403 and "<Code>SignatureDoesNotMatch</Code>" in await answer.text()
        await asyncio.sleep(0.4)
        async with session.get(url) as answer:
            assert answer.status == 403
            text = await answer.text()
            assert "<Code>AccessDenied</Code>" in text and "<Message>Request has expired</Message>" in text
    assert emu.store_stats.credentials_seen == 1
    assert emu.store_stats.refused == {"InvalidArgument": 1, "SignatureDoesNotMatch": 2, "AccessDenied": 1}


async def test_resets_at_the_store_resume_there_by_range(start_emulator: Start, tmp_path: Path) -> None:
    faults = FaultConfig(seed=4, reset=1.0, first_attempts=2)  # the first two bodies of each object break off
    emu = start_emulator(EmulatorConfig(presign=True, rate_limits=False, range_mode="none", faults=faults),
                         dataset=dataset(big=3_000_000))
    events = ListSink()
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, config_for(emu, chunk_size=65536), sink=events)
    assert [f.reason for f in summary.failed] == []
    assert_verified(emu, tmp_path)
    met = [e.detail for e in events.events if isinstance(e, FaultMet)]
    assert met and all("X-Amz-Signature=***" in m for m in met)  # a signed URL is a credential: masked
    store = emu.store_stats
    assert store.faults["reset"] >= 2
    assert store.range_requests >= 2  # resumed at the store, though the instance's own routes ignore Range
    assert store.statuses[206] >= 2
    assert emu.stats.range_requests == 0
    assert store.bytes_served < 2 * 3_000_000  # resumed, not started again
    assert redirects(emu) == store.requests  # each try asked the record's URL for a fresh signature


@pytest.mark.parametrize("segments", [1, 4])
async def test_a_signature_shorter_than_the_transfer_still_ends_verified(start_emulator: Start, tmp_path: Path,
                                                                       segments: int) -> None:
    """A 0.5 s signature, a file that takes seconds to arrive, bodies broken off: every try, resume and
    segment asks the record's URL again, never the signed URL of an earlier try (expired by then)."""
    faults = FaultConfig(seed=9, bandwidth=1_000_000, reset=1.0, first_attempts=1)
    emu = start_emulator(EmulatorConfig(presign=True, rate_limits=False, presign_expiry=0.5, faults=faults),
                         dataset=dataset(big=2_000_000))
    config = config_for(emu, segments=segments, segment_threshold=1_000_000 if segments > 1 else 1 << 40,
                        chunk_size=65536)
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, config)
    assert [f.reason for f in summary.failed] == []
    assert_verified(emu, tmp_path)
    store = emu.store_stats
    assert store.faults["reset"] >= 1 and store.range_requests >= 1
    assert redirects(emu) == store.requests > 2
    assert store.credentials_seen == 0


async def test_four_segments_of_a_large_file_through_the_store(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(presign=True, rate_limits=False, range_mode="none"),
                         dataset=dataset(big=20_000_000))
    config = config_for(emu, segments=4, segment_threshold=1_000_000, token=TOKEN)
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, config, options=RunOptions(archive="never"))
    assert [f.reason for f in summary.failed] == []
    assert_verified(emu, tmp_path)
    store = emu.store_stats
    assert store.range_requests > 1 and store.statuses[206] > 1
    assert store.credentials_seen == 0
    assert emu.stats.range_requests == 0


@pytest.mark.parametrize("segments", [1, 4])
async def test_signatures_refused_as_expired_are_asked_for_again(start_emulator: Start, tmp_path: Path,
                                                                 segments: int) -> None:
    faults = FaultConfig(seed=2, expired=0.5)  # half the store's requests come "too late"
    emu = start_emulator(EmulatorConfig(presign=True, rate_limits=False, faults=faults),
                         dataset=dataset(big=3_000_000, more=2_000_000, last=500_000))
    config = config_for(emu, token=TOKEN, segments=segments, segment_threshold=1_000_000)
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, config, options=RunOptions(archive="never"))
    assert [f.reason for f in summary.failed] == []
    assert_verified(emu, tmp_path)
    store = emu.store_stats
    if segments > 1:
        assert store.range_requests > 1
    assert store.refused["AccessDenied"] == store.faults["expired"] >= 1
    assert redirects(emu) == store.requests  # each refusal sent the client back to the record's URL
    assert store.credentials_seen == 0


async def test_a_signature_always_expired_fails_the_file_with_the_stores_words(start_emulator: Start,
                                                                               tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(presign=True, rate_limits=False, presign_expiry=0.0),
                         dataset=dataset())
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, config_for(emu, retries=2, max_attempts=1))
    [failed] = summary.failed
    assert "Request has expired" in failed.reason and "signed" in failed.reason
    assert "X-Amz-Signature" not in failed.reason  # the signed query is not repeated in messages
    assert redirects(emu) == emu.store_stats.requests == 3  # a fresh signature for each try


async def test_cookies_the_instance_sets_are_sent_nowhere() -> None:
    """Zenodo sets load-balancer cookies; cookies ignore ports, so a store on the instance's host name (or
    under its domain) would get them back: the client keeps none."""
    seen: list[str | None] = []

    async def instance(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        target = f"http://localhost:{request.query['store']}/object" if "store" in request.query else None
        response = web.Response(status=302 if target else 200, text="{}", content_type="application/json",
                                headers={"Location": target} if target else None)
        response.set_cookie("session", "s3cret", domain="localhost")
        return response

    async def store(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        return web.json_response({"ok": True})

    instance_app, store_app = web.Application(), web.Application()
    instance_app.router.add_get("/api/records/1", instance)
    store_app.router.add_get("/object", store)
    async with serve(instance_app) as api, serve(store_app) as bytes_host, \
            Client(Config(base_url=api.replace("127.0.0.1", "localhost"), token=TOKEN)) as client:
        base = api.replace("127.0.0.1", "localhost")
        await client.get_json(f"{base}/api/records/1")
        assert await client.get_json(f"{base}/api/records/1?store={bytes_host.rsplit(':', 1)[1]}") == {"ok": True}
    assert seen == [None, None, None]


async def test_the_store_is_not_held_to_the_instances_budget(start_emulator: Start, tmp_path: Path) -> None:
    """The redirecting request spends the instance's rate limit; the store (no rate-limit headers) is its own
    host, so the governor's probe of an unknown budget (4 at once) does not hold its bodies back."""
    files = {f"f{i}.bin": 1_000_000 for i in range(12)}
    emu = start_emulator(EmulatorConfig(presign=True, faults=FaultConfig(bandwidth=2_000_000)),
                         dataset=Dataset([record(11, concept=10, files=dict(files))]))
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, config_for(emu, concurrency=8, token=TOKEN),
                           options=RunOptions(archive="never"))
    assert [f.reason for f in summary.failed] == []
    assert emu.store_stats.bodies_peak > 4
    assert emu.stats.requests["content"] == emu.store_stats.requests == 12  # each counted by the instance
    assert emu.stats.rate_limited == 0


async def test_a_store_address_that_cannot_be_bound_fails_loudly() -> None:
    emulator = Emulator(EmulatorConfig(presign=True, presign_host="192.0.2.1"), dataset=dataset())  # TEST-NET-1
    with pytest.raises(OSError, match=r"presigned object store cannot listen on 192\.0\.2\.1"):
        await emulator.start()
    assert emulator.running is None

"""File bodies: headers, Range semantics per URL kind, 416, the files-archive ZIP."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import shutil
import socket
import ssl
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from tests.conftest import cassette_headers, load_cassette
from tests.datasets import record
from tests.http_helpers import get

Start = Callable[..., RunningEmulator]
TENSION = ("handley-lab__unimpeded__tests__cassettes__TestDownloadTensionInputs."
           "test_download_tension_inputs_caching.PARTIAL.yaml")
API = "/api/records/11/files/big.bin/content"
UI = "/records/11/files/big.bin?download=1"


def leading_zero_content() -> bytes:
    """Some bytes whose md5 starts with a zero, to check OC-Checksum drops it."""
    n = 0
    while not hashlib.md5(str(n).encode()).hexdigest().startswith("0"):
        n += 1
    return str(n).encode()


def dataset() -> Dataset:
    return Dataset([record(11, concept=10, files={"big.bin": 300_000, "zero.txt": leading_zero_content(),
                                                  "dir/with space#and?.txt": b"tricky\n"})])


def test_content_headers_like_recorded(start_emulator: Start) -> None:
    recorded = cassette_headers(load_cassette(TENSION)[3])
    emu = start_emulator(dataset=dataset())
    reply = get(f"{emu.url}/api/records/11/files/zero.txt/content")
    body = leading_zero_content()
    assert reply.body == body
    assert reply.headers["accept-ranges"] == recorded["accept-ranges"] == "bytes"
    assert reply.headers["content-disposition"] == "attachment; filename=zero.txt"
    assert recorded["content-disposition"].startswith("attachment; filename=")
    assert reply.headers["content-length"] == str(len(body))
    digest = hashlib.md5(body).hexdigest()
    assert reply.headers["oc-checksum"] == f"MD5:{digest.lstrip('0')}" != f"MD5:{digest}"
    assert "etag" not in reply.headers


def test_quoted_keys_with_slash_space_hash_question(start_emulator: Start) -> None:
    emu = start_emulator(dataset=dataset())
    hit = get(f"{emu.url}/api/records/11").json()
    link = next(f["links"]["self"] for f in hit["files"] if f["key"].startswith("dir/"))
    assert "dir/with%20space%23and%3F.txt/content" in link
    assert get(link).body == b"tricky\n"
    assert get(f"{emu.url}/records/11/files/dir/with%20space%23and%3F.txt?download=1").body == b"tricky\n"


@pytest.mark.parametrize(("mode", "api_206", "ui_206"),
                         [("api", True, False), ("ui", False, True), ("both", True, True), ("none", False, False)])
def test_range_honoured_per_url_kind(start_emulator: Start, mode: str, api_206: bool, ui_206: bool) -> None:
    emu = start_emulator(EmulatorConfig(range_mode=mode), dataset=dataset())  # type: ignore[arg-type]
    whole = get(f"{emu.url}{API}").body
    assert len(whole) == 300_000
    for path, honoured in ((API, api_206), (UI, ui_206)):
        reply = get(f"{emu.url}{path}", {"Range": "bytes=1000-"})
        if honoured:
            assert reply.status == 206
            assert reply.headers["content-range"] == "bytes 1000-299999/300000"
            assert reply.body == whole[1000:]
        else:
            assert reply.status == 200 and "content-range" not in reply.headers
            assert reply.body == whole
        assert reply.headers["accept-ranges"] == "bytes"  # advertised even where ignored, as Zenodo does


def test_range_forms_and_416(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(range_mode="both"), dataset=dataset())
    whole = get(f"{emu.url}{UI}").body
    closed = get(f"{emu.url}{UI}", {"Range": "bytes=10-19"})
    assert closed.status == 206 and closed.body == whole[10:20]
    suffix = get(f"{emu.url}{UI}", {"Range": "bytes=-100"})
    assert suffix.status == 206 and suffix.body == whole[-100:]
    beyond = get(f"{emu.url}{UI}", {"Range": "bytes=300000-"})
    assert beyond.status == 416 and beyond.headers["content-range"] == "bytes */300000"
    garbage = get(f"{emu.url}{UI}", {"Range": "lines=1-2"})
    assert garbage.status == 200 and garbage.body == whole


def test_generated_content_is_deterministic_and_distinct(start_emulator: Start) -> None:
    first = start_emulator(dataset=dataset())
    second = start_emulator(dataset=dataset())
    a = get(f"{first.url}{API}").body
    assert a == get(f"{second.url}{API}").body
    listed = get(f"{first.url}/api/records/11").json()["files"]
    assert next(f["checksum"] for f in listed if f["key"] == "big.bin") == f"md5:{hashlib.md5(a).hexdigest()}"


def test_head_request_sends_headers_only(start_emulator: Start) -> None:
    emu = start_emulator(dataset=dataset())
    reply = get(f"{emu.url}{API}", method="HEAD")
    assert reply.status == 200 and reply.headers["content-length"] == "300000" and reply.body == b""


def test_files_archive_is_a_streamed_zip(start_emulator: Start) -> None:
    emu = start_emulator(dataset=dataset())
    reply = get(f"{emu.url}/api/records/11/files-archive")
    assert reply.status == 200 and reply.headers["content-type"] == "application/zip"
    assert "content-length" not in reply.headers
    assert reply.headers["content-disposition"] == "attachment; filename=11.zip"
    archive = zipfile.ZipFile(io.BytesIO(reply.body))
    assert archive.testzip() is None
    assert archive.read("dir/with space#and?.txt") == b"tricky\n"
    assert archive.read("big.bin") == get(f"{emu.url}{API}").body


def test_files_archive_cap(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(archive_limit=1000), dataset=dataset())
    reply = get(f"{emu.url}/api/records/11/files-archive")
    assert reply.status == 400
    assert reply.json()["message"] == ("Archive download is only available for records with total file size up "
                                       "to 1000 bytes.")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_serves_https_as_zenodo_org(start_emulator: Start, tmp_path: Path) -> None:
    """The TLS mode zenodo_get's benchmark uses: links say https://zenodo.org, the certificate is for it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
                    "-out", str(cert), "-subj", "/CN=zenodo.org", "-addext", "subjectAltName=DNS:zenodo.org"],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    emu = start_emulator(EmulatorConfig(public_url="https://zenodo.org"), dataset=dataset(), ssl_context=context)
    client = ssl.create_default_context(cafile=str(cert))
    connection = http.client.HTTPSConnection("127.0.0.1", emu.port, context=client, timeout=30)
    connection.sock = client.wrap_socket(socket.create_connection(("127.0.0.1", emu.port)),
                                         server_hostname="zenodo.org")  # verified as zenodo.org
    connection.request("GET", "/api/records/11")
    body = json.loads(connection.getresponse().read())
    assert body["links"]["self"] == "https://zenodo.org/api/records/11"

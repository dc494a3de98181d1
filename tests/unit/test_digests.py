"""Checksums of every kind a record may state: md5, hashlib's others, S3 multipart ETags, none."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from asyncdl.digests import Check, MultipartDigest, multipart_etag
from asyncdl.models import Checksum

# md5 of the binary md5s of "a"*100, "a"*100 and "a"*50, worked out by hand with hashlib
THREE_PARTS = "f02232f4881b3271459674f09374d599"
ONE_PART = "70f738170acfbb0513b42a6c4cc25359"  # md5(md5("a"*100)): one part is not the plain md5


def check(text: str) -> Check:
    return Check(Checksum.parse(text))


def test_multipart_etag_matches_the_hand_computed_value() -> None:
    assert multipart_etag(b"a" * 250, 100) == f"{THREE_PARTS}-3"
    assert multipart_etag(b"a" * 100, 100) == f"{ONE_PART}-1"
    assert hashlib.md5(b"a" * 100).hexdigest() != ONE_PART
    exact = b"".join(hashlib.md5(b"a" * 100).digest() for _ in range(2))
    assert multipart_etag(b"a" * 200, 100) == f"{hashlib.md5(exact).hexdigest()}-2"  # no empty third part


@pytest.mark.parametrize("chunk", [1, 7, 100, 101, 250])
def test_multipart_digest_does_not_depend_on_how_the_bytes_arrive(chunk: int) -> None:
    digest = check(f"multipart:{THREE_PARTS}-3-100").new()
    data = b"a" * 250
    for start in range(0, len(data), chunk):
        digest.update(data[start:start + chunk])
    assert digest.problem() is None
    assert digest.problem() is None  # asking twice changes nothing


def test_multipart_mismatches_are_told() -> None:
    wrong_count = check(f"multipart:{THREE_PARTS}-4-100").new()
    wrong_count.update(b"a" * 250)
    assert wrong_count.problem() == "multipart checksum: 3 parts of 100 bytes, where the record states 4"
    flipped = check(f"multipart:{THREE_PARTS}-3-100").new()
    flipped.update(b"a" * 249 + b"b")
    assert (flipped.problem() or "").startswith("multipart checksum ") and THREE_PARTS in (flipped.problem() or "")


def test_multipart_without_its_count_checks_the_etag() -> None:
    c = check(f"multipart:{THREE_PARTS}-100")
    assert c.verifiable and c.describe() == "multipart checksum verified (parts of 100 bytes)"
    digest = c.new()
    digest.update(b"a" * 250)
    assert digest.problem() is None


@pytest.mark.parametrize("value", ["zz-0-0", f"{THREE_PARTS}-3-0", f"{THREE_PARTS}-0-100", "abc", f"{THREE_PARTS}"])
def test_malformed_multipart_is_a_reason_not_a_traceback(value: str) -> None:
    c = check(f"multipart:{value}")
    assert not c.verifiable
    assert c.unverified(10) == (f"size checked only; the record gives a malformed multipart checksum {value!r} "
                                "(asyncdl reads <etag hex>-<parts>-<part size>)")
    assert c.new().problem() is None


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "sha512", "blake2b"])
def test_hashlib_algorithms(algorithm: str, tmp_path: Path) -> None:
    data = b"some bytes" * 1000
    c = check(f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}")
    assert c.verifiable and c.describe() == f"{algorithm} verified"
    path = tmp_path / "f"
    path.write_bytes(data)
    assert c.of_file(path).problem() is None
    path.write_bytes(data[:-1] + b"!")
    assert (c.of_file(path).problem() or "").startswith(f"{algorithm} ")


def test_unknown_missing_and_malformed_are_size_checked_only() -> None:
    assert check("crc32c:abcd").unverified(5) == ("size checked only; the record gives a crc32c checksum, which "
                                                  "asyncdl cannot compute")
    assert check("sha256:abc123").unverified(5) == ("size checked only; the record gives a malformed sha256 "
                                                    "checksum 'abc123'")
    none = Check(None)
    assert not none.verifiable and none.kind == "none"
    assert none.unverified(5) == "size checked only; the record gives no checksum"
    assert none.unverified(None) == "not verified: the record gives no size and no checksum"


def test_a_part_size_larger_than_the_file_is_one_part() -> None:
    digest = MultipartDigest(ONE_PART, 1, 10**9)
    digest.update(b"a" * 100)
    assert digest.problem() is None

"""Token parameters are masked in URLs shown to anyone; everything else is kept as it was."""

from __future__ import annotations

import pytest

from asyncdl.redact import redact

CASES = {
    "https://zenodo.org/api/records/1": "https://zenodo.org/api/records/1",
    "https://zenodo.org/api/records/1?access_token=s3cret": "https://zenodo.org/api/records/1?access_token=***",
    "https://x.org/a?token=s3cret&page=2": "https://x.org/a?token=***&page=2",
    "https://x.org/a?q=&token=s3cret": "https://x.org/a?q=&token=***",
    "https://x.org/a?q=title:x/y": "https://x.org/a?q=title:x/y",
    "http://127.0.0.2:9/bucket/b/o/data?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=60&X-Amz-Signature=s3cret":
        "http://127.0.0.2:9/bucket/b/o/data?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=60&X-Amz-Signature=***",
    "https://s3.example.org/k?AWSAccessKeyId=A&Expires=1&Signature=s3cret":
        "https://s3.example.org/k?AWSAccessKeyId=A&Expires=1&Signature=***",
    "https://b.blob.core.windows.net/c/k?sv=2020&sig=s3cret": "https://b.blob.core.windows.net/c/k?sv=2020&sig=***",
}


@pytest.mark.parametrize(("url", "shown"), CASES.items())
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert "s3cret" not in redact(url)

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
}


@pytest.mark.parametrize(("url", "shown"), CASES.items())
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert "s3cret" not in redact(url)

"""The IODP seed notebook's download loop: list a search, then for each record list its files and
urlretrieve them one after another (no checksum, no retry, no resume).

Usage: python seed_loop.py BASE_URL QUERY DEST
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path
from urllib.parse import quote


def get_json(url: str) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(url, headers={"User-Agent": "seed-notebook/1.0"})
    with urllib.request.urlopen(request, timeout=120) as reply:
        return dict(json.load(reply))


def main(base: str, query: str, dest: str) -> None:
    records, url = [], f"{base}/api/records?q={quote(query)}&size=25&page=1"
    while url:
        page = get_json(url)
        records += page["hits"]["hits"]
        url = page.get("links", {}).get("next")
    for record in records:
        listing = get_json(f"{base}/api/records/{record['id']}/files")
        folder = Path(dest) / str(record["id"])
        for entry in listing["entries"]:
            target = folder / entry["key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            urllib.request.urlretrieve(entry["links"]["content"], target)


if __name__ == "__main__":
    main(*sys.argv[1:4])

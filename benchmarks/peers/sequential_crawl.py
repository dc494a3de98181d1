"""The seed notebooks' way to list a selection: one page after another, following links.next.

Usage: python sequential_crawl.py SEARCH_URL
Prints the number of records and of requests. It keeps one connection alive (kinder to it than the
notebooks, which open a new connection for every page).
"""

from __future__ import annotations

import http.client
import json
import sys
from urllib.parse import urlsplit


def main(url: str) -> None:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    next_url: str | None = url
    records, requests = 0, 0
    while next_url:
        target = urlsplit(next_url)
        connection.request("GET", f"{target.path}?{target.query}", headers={"User-Agent": "seed-notebook/1.0"})
        response = connection.getresponse()
        body = json.loads(response.read())
        requests += 1
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status} after {records} records: {body}")
        records += len(body["hits"]["hits"])
        next_url = body.get("links", {}).get("next")
    print(json.dumps({"records": records, "requests": requests}))


if __name__ == "__main__":
    main(sys.argv[1])

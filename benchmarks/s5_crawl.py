"""S5: list 10,000 records from a server with 100 ms latency per request.

Models a selection of 10,000 records on a fast institutional InvenioRDM (no rate limit) reached over a
long-haul link: asyncdl's concurrent pages against the sequential links.next loop of the seed notebooks.
"""

from __future__ import annotations

import json
import math

from benchmarks.common import PYTHON, ROOT, Row, emulator, show, timed

GOAL = 5.0


def run(quick: bool) -> list[Row]:
    records, latency = (1000, 0.02) if quick else (10_000, 0.1)
    args = ["--records", str(records), "--latency", str(latency), "--no-rate-limits", "--restricted-fraction", "0",
            "--files-restricted-fraction", "0", "--embargoed-fraction", "0", "--deleted-fraction", "0",
            "--multi-version-fraction", "0"]
    rows = []
    pages = math.ceil(records / 25)
    with emulator(*args) as server:
        mine = [PYTHON, "-m", "asyncdl", "list", "--base-url", server.url, "--query", "*", "--format", "jsonl",
                "--columns", "id"]
        seconds, result = timed(mine)
        found = len(result.stdout.splitlines())
        requests = server.stats()["total_requests"]
        rows.append(Row("S5", "asyncdl list", seconds, show(mine),
                        {"records": found, "requests": requests, "requests_per_record": requests / max(1, found),
                         "pages_needed": pages}))
        server.reset()
        theirs = [PYTHON, str(ROOT / "peers" / "sequential_crawl.py"),
                  f"{server.url}/api/records?q=*&size=25&page=1&sort=oldest"]
        seconds, result = timed(theirs)
        counted = json.loads(result.stdout)
        rows.append(Row("S5", "sequential links.next (seed notebooks)", seconds, show(theirs),
                        {"records": counted["records"], "requests": counted["requests"],
                         "requests_per_record": counted["requests"] / max(1, counted["records"]),
                         "pages_needed": pages}))
    base = rows[0].seconds or 1
    for row in rows:
        row.metrics["time_vs_asyncdl"] = round((row.seconds or 0) / base, 2)
    ratio = rows[1].metrics["time_vs_asyncdl"]
    rows[0].note = (f"goal >= {GOAL:g}x faster than sequential: {'met' if ratio >= GOAL else 'MISSED'} ({ratio}x); "
                    f"{rows[0].metrics['requests']} requests for {pages} pages needed")
    return rows

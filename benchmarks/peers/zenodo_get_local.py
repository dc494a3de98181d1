"""Run zenodo_get against the emulator. zenodo_get only talks HTTPS to zenodo.org, so in this process
alone zenodo.org resolves to 127.0.0.1 (the emulator's port) and the emulator's certificate is trusted.
No system file is touched.

Usage: ASYNCDL_BENCH_PORT=N ASYNCDL_BENCH_CERT=cert.pem python zenodo_get_local.py RECORD -o DIR
"""

from __future__ import annotations

import importlib
import os
import runpy
import socket
import sys
from typing import Any

PORT = int(os.environ["ASYNCDL_BENCH_PORT"])
CERT = os.environ["ASYNCDL_BENCH_CERT"]
_real_getaddrinfo = socket.getaddrinfo


def _local_zenodo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    if host in ("zenodo.org", b"zenodo.org"):
        return _real_getaddrinfo("127.0.0.1", PORT, *args, **kwargs)
    return _real_getaddrinfo(host, port, *args, **kwargs)


socket.getaddrinfo = _local_zenodo
os.environ["SSL_CERT_FILE"] = CERT
# zenodo_get (installed by benchmarks/setup.sh) brings certifi; patch it before zenodo_get builds its client
setattr(importlib.import_module("certifi"), "where", lambda: CERT)  # noqa: B010
sys.argv = ["zenodo_get", *sys.argv[1:]]
runpy.run_module("zenodo_get", run_name="__main__", alter_sys=True)

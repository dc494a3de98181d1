#!/usr/bin/env bash
# Install the peers the benchmarks compare asyncdl with (the benchmarks themselves install nothing).
set -euo pipefail
if command -v apt-get >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq aria2 curl
fi
python -m pip install -q requests zenodo-get

#!/usr/bin/env bash
# Side-by-side load run on loopback: upstream direct, a bare hyper proxy, tollgate on an
# anonymous route, tollgate with token validation + policy. Bounded by LOAD_REQUESTS
# (default 20000 per scenario) and LOAD_SECONDS (default 20 per scenario).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench load -- "$@"

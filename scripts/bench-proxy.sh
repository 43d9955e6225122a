#!/usr/bin/env bash
# Compute proxy benchmark (issue 5), one cluster (3 safekeepers + pageserver + the proxy process, pool of 2, endpoint main):
#   1. pgbench -S and TPC-B-like (scale 10, 8 clients) through the proxy vs directly to the compute's PostgreSQL;
#   2. connection set-up: pgbench -C -S through the proxy vs directly (TPS and mean connection time);
#   3. failover: the VM serving main SIGKILLed while a client commits through the proxy, until its next commit;
#   and the classic bars in the same run: select-only through pgbouncer, a synchronous standby's failover.
# Options are passed through, e.g. --duration 15 --runs 3 --clients 8 --scale 10 --failovers 5 --out FILE.
# Takes about 8 minutes on 2 cores. Run as root. Results: a table on stdout and in bench/results/proxy-<date>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# The classic bar measured in the same run (select-only through pgbouncer); the bench skips it if this fails.
if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer </dev/null || echo "bench-proxy: pgbouncer not installed; the classic bar is skipped" >&2
fi
dotnet run -c Release --project bench/Proxy.Bench -- "$@"

#!/usr/bin/env bash
# Cluster benchmark: pgbench TPC-B (scale 10, 1 and 8 clients) on (a) plain PostgreSQL 15, (b) PostgreSQL with two
# sync standbys (ANY 1), (c) PostgreSQL through the walproposer and 3 safekeepers; TPS, latency, ratios c/a and c/b.
# Options are passed through, e.g. --duration 15 --runs 3 --only a,b --out FILE (see bench/pgbench/run.sh --help).
# Results: a table on stdout and JSON in bench-results/pgbench.json (by default). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash bench/pgbench/run.sh "$@"

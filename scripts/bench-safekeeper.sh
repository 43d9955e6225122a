#!/usr/bin/env bash
# Safekeeper benchmark: raw disk baseline vs quorum-replicated WAL over 3 safekeeper processes.
# Options are passed through, e.g. --iterations 2000 --megabytes 256 --dir /mnt/disk --out FILE.
# Results: a table on stdout and JSON in bench-results/safekeeper.json (by default).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet run -c Release --project bench/Safekeeper.Bench -- "$@"

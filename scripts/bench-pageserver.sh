#!/usr/bin/env bash
# Pageserver benchmark, every figure beside a baseline measured in the same run:
#   1. WAL ingest (decode + index + segment layers) vs reading the same real PostgreSQL WAL (pgbench -i -s 10 + 10 s);
#   2. Basebackup throughput vs reading the image and WAL files it is made of;
#   3. compute start (attach on an empty VM until SELECT 1) vs pg_basebackup + start of the same data, 16 MB and 1 GB.
# Options are passed through, e.g. --sizes 16,1024 --only ingest,cluster --repeats 3 --image-after-mb 64
# --image-after-seconds 5 --logs DIR --out FILE. Takes about 5-10 minutes on 2 cores. Run as root.
# Results: a table on stdout and in bench/results/pageserver-<date>.md (by default).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet run -c Release --project bench/Pageserver.Bench -- "$@"

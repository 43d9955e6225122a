#!/usr/bin/env bash
# The docker compose figures: image build time (scripts/docker-images.sh; --cold removes the
# project's images first, base images included), `up` to the first successful query through the
# proxy, and VM-container failover: `docker kill` of the VM serving endpoint main to the next commit
# through the proxy (a new connection per try), median of N, each killed VM started again (by the VM
# keeper) and back in the pool as an idle VM prepared with the newest image before the next. Runs its own compose project (ports 56432, 9190, 7100) and
# removes it, volumes included. As root. Usage: bash scripts/bench-compose.sh [--cold] [--failovers N]
set -euo pipefail
cd "$(dirname "$0")/.."
cold=0 failovers=5
while [ $# -gt 0 ]; do
  case "$1" in
    --cold) cold=1 ;;
    --failovers) failovers=$2; shift ;;
    *) echo "usage: $0 [--cold] [--failovers N]" >&2; exit 2 ;;
  esac
  shift
done
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

if [ $cold = 1 ]; then
  for image in storage-engine:local storage-s3rver:local storage-prometheus:local storage-local/dotnet-runtime:10.0 storage-local/debian:bookworm; do
    docker rmi -f "$image" >/dev/null 2>&1 || true
  done
  docker image prune -f >/dev/null
fi
t=$(now); bash scripts/docker-images.sh >/dev/null; build=$(since "$t")
t=$(now); bash scripts/docker-images.sh >/dev/null; cached=$(since "$t")

export STORAGE_PG_PORT=56432 STORAGE_PROMETHEUS_PORT=9190 STORAGE_ADMIN_PORT=7100
project=storagebench$$
compose() { docker-compose -f docker-compose.yml -p "$project" "$@"; }
trap 'compose down -v --timeout 5 >/dev/null 2>&1' EXIT
uri="postgresql://app:app-password@localhost:$STORAGE_PG_PORT/postgres?connect_timeout=5"
# The admin API wants the cluster's admin token (made by the keys service once compose is up).
vms() { curl -sf -H "Authorization: Bearer $(compose exec -T proxy cat /auth/admin-operator.token)" "http://127.0.0.1:$STORAGE_ADMIN_PORT/vms"; }
attached() { vms | python3 -c 'import json,sys; print(next(v["id"] for v in json.load(sys.stdin) if v["state"] == "attached"))'; }
# Idle and prepared with the newest image of main's timeline (the control plane does that every 2 s), as a spare is.
spare() { vms | python3 -c "import json,sys; sys.exit(0 if any(v['id'] == '$1' and v['state'] == 'idle' and v['preparedImageLsn'] > 0 for v in json.load(sys.stdin)) else 1)"; }
# Retries (bounded) until the command succeeds.
until_ok() { local tries=$1; shift; for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

t=$(now)
compose up -d >/dev/null 2>&1
until_ok 3000 psql "$uri" -tAc "create table if not exists bench (id serial primary key, at timestamptz default now())" \
  || { echo "no query through the proxy within 5 minutes" >&2; exit 1; }
first_query=$(since "$t")
vm=$(attached)
other=$(vms | python3 -c "import json,sys; print(next(v['id'] for v in json.load(sys.stdin) if v['id'] != '$vm'))")
until_ok 1200 spare "$other" || { echo "$other never became a prepared spare" >&2; exit 1; }

times=()
for i in $(seq "$failovers"); do
  vm=$(attached)
  t=$(now)
  docker kill "$(compose ps -q "$vm")" >/dev/null
  killed=$(since "$t")
  until_ok 1200 psql "$uri" -tAc "insert into bench default values" || { echo "no commit within 2 minutes of killing $vm" >&2; exit 1; }
  times+=("$(since "$t")")
  echo "failover $i: docker kill $vm -> next commit ${times[-1]} s (docker kill itself took $killed s)"
  until_ok 1200 spare "$vm" || { echo "$vm did not rejoin the pool as a prepared spare" >&2; exit 1; }
done
median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')

printf 'image build%s: %.0f s; again (cached): %.1f s\n' "$([ $cold = 1 ] && echo ' (cold)')" "$build" "$cached"
printf 'up to the first query through the proxy: %.1f s\n' "$first_query"
printf 'VM-container failover (docker kill to the next commit through the proxy), median of %d: %.2f s\n' "$failovers" "$median"

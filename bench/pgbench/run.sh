#!/usr/bin/env bash
# Cluster benchmark: pgbench TPC-B-like (scale 10, 1 and 8 clients) on
#   (a) a plain local PostgreSQL 15,
#   (b) PostgreSQL 15 with two streaming synchronous standbys, synchronous_standby_names = 'ANY 1 (s1, s2)',
#   (c) PostgreSQL 15 through our walproposer and three safekeepers (`./storagectl up`),
# reporting TPS and average latency for each, and the TPS ratios c/a and c/b. Goal: c/b >= 0.8 at 8 clients.
#
# The method follows the anchors (shared/anchors-RESULTS.md): `initdb -A trust` defaults plus fsync=on,
# synchronous_commit=on, max_wal_size=1GB; `pgbench -i -s 10`; a CHECKPOINT before every run (pgbench's own vacuum
# runs too, no -n); `-c1 -j1 -T <secs>` and `-c8 -j2 -T <secs>`; the median of --runs runs, with min-max.
#
# Usage: bench/pgbench/run.sh [--duration SECS] [--runs N] [--only a,b,c] [--scale N] [--out FILE] [--tmpdir DIR]
# Env:   STORAGE_PG_BIN (default /usr/lib/postgresql/15/bin).
# Runs as root with no stdin; PostgreSQL itself runs as the OS user postgres. Setups run one after another and each is
# torn down before the next starts, so they never share the CPUs. Everything started is stopped on exit (by data dir /
# PID, never by process name) and the scratch directory is removed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PG_BIN="${STORAGE_PG_BIN:-/usr/lib/postgresql/15/bin}"

DURATION=15
RUNS=3
SCALE=10
ONLY="a,b,c"
OUT="bench-results/pgbench.json"
TMP_PARENT="${TMPDIR:-/tmp}"
CLIENTS=(1 8)                    # pgbench -c; threads: -j1 for 1 client, -j2 for 8 (as the anchors)

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION="${2:?--duration needs a value}"; shift 2 ;;
        --runs) RUNS="${2:?--runs needs a value}"; shift 2 ;;
        --scale) SCALE="${2:?--scale needs a value}"; shift 2 ;;
        --only) ONLY="${2:?--only needs a value, e.g. a,b}"; shift 2 ;;
        --out) OUT="${2:?--out needs a value}"; shift 2 ;;
        --tmpdir) TMP_PARENT="${2:?--tmpdir needs a value}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for v in DURATION RUNS SCALE; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --${v,,} must be a positive integer" >&2; exit 2; }
done
SETUPS=()
for s in ${ONLY//,/ }; do
    case "$s" in a|b|c) SETUPS+=("$s") ;; *) echo "run.sh: --only takes a list of a, b, c" >&2; exit 2 ;; esac
done
[ ${#SETUPS[@]} -gt 0 ] || { echo "run.sh: --only selects nothing" >&2; exit 2; }
case "$OUT" in /*) ;; *) OUT="$REPO/$OUT" ;; esac   # relative to the repo root, like the safekeeper bench

[ "$(id -u)" -eq 0 ] || { echo "run.sh: run as root (PostgreSQL is started as the postgres user via setpriv)" >&2; exit 1; }
id postgres >/dev/null 2>&1 || { echo "run.sh: the postgres OS user is missing (scripts/install-deps.sh)" >&2; exit 1; }
for b in initdb pg_ctl postgres pg_basebackup pgbench psql; do
    [ -x "$PG_BIN/$b" ] || { echo "run.sh: $PG_BIN/$b not found (set STORAGE_PG_BIN)" >&2; exit 1; }
done

declare -A SETUP_NAME=(
    [a]="plain PostgreSQL 15"
    [b]="primary + 2 sync standbys, ANY 1 (s1, s2)"
    [c]="walproposer + 3 safekeepers"
)

# Client connections must not pick up anything from the caller's environment.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS
export PGCONNECT_TIMEOUT=10

# ---------------------------------------------------------------------------------------------------------------
# Scratch space, and the registry of everything started, so that the exit trap can stop it whatever happened.
# The registry is a file (not a variable) because each setup runs in a subshell.
WORK="$(mktemp -d "$TMP_PARENT/pgbench-bench.XXXXXX")"
chown postgres:postgres "$WORK"            # data dirs and server logs are written by the postgres user
SERVERS="$WORK/servers"                    # lines: "pgdata DIR" or "storagectl DIR"
: >"$SERVERS"
SETUP_PID=""

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Stops every registered server, newest first. pg_ctl -m immediate: we never need their data again.
stop_servers() {
    local kind dir pid
    [ -s "$SERVERS" ] || return 0
    tac "$SERVERS" | while read -r kind dir; do
        case "$kind" in
            pgdata)
                [ -f "$dir/postmaster.pid" ] || continue
                if ! as_pg "$PG_BIN/pg_ctl" -D "$dir" -m immediate -w -t 30 stop >/dev/null 2>&1; then
                    # pg_ctl could not do it: kill the postmaster recorded in that data dir (its children follow).
                    pid="$(head -n1 "$dir/postmaster.pid" 2>/dev/null || true)"
                    [[ "$pid" =~ ^[0-9]+$ ]] && kill -KILL "$pid" 2>/dev/null || true
                fi ;;
            storagectl)
                [ -e "$dir" ] || continue   # 'up' failed before creating anything
                (cd "$REPO" && timeout 120 ./storagectl --dir "$dir" down </dev/null >>"$dir.down.log" 2>&1) ||
                    echo "warning: './storagectl --dir $dir down' failed; see its output:" "$(tail -n 5 "$dir.down.log" 2>/dev/null)" >&2 ;;
        esac
    done
    : >"$SERVERS"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$SETUP_PID" ] && kill -0 "$SETUP_PID" 2>/dev/null; then
        pkill -TERM -P "$SETUP_PID" 2>/dev/null || true   # its current child (pgbench, psql, storagectl), by parent PID
        kill -TERM "$SETUP_PID" 2>/dev/null || true
    fi
    stop_servers
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# PostgreSQL refuses to run as root. cd into WORK: the postgres user may not be able to read the caller's directory.
as_pg() { (cd "$WORK" && setpriv --reuid=postgres --regid=postgres --init-groups -- "$@" </dev/null); }

# First port of N consecutive ports nobody listens on, below the ephemeral range (so client sockets cannot take them).
free_ports() {
    local n=$1 used base p ok
    used=" $(ss -Htan 2>/dev/null | awk '{n=split($4,a,":"); printf "%s ", a[n]}') "
    for _ in $(seq 200); do
        base=$(( 20000 + RANDOM % 12000 ))
        ok=1
        for ((p = base; p < base + n; p++)); do
            [[ "$used" == *" $p "* ]] && { ok=0; break; }
        done
        [ $ok -eq 1 ] && { echo "$base"; return 0; }
    done
    echo "run.sh: no $n free consecutive ports found" >&2
    return 1
}

# A setup stops here with a reason (first line) and maybe some output (further lines); run_setup reports it.
fail() { echo "$*" >"$WORK/$CURRENT.error"; exit 1; }
# Text without terminal colour codes and CRs (the console library of storagectl may add them even into a pipe).
plain() { sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' -e 's/\r$//'; }
# The last N lines of a file, indented, as a block under a failure's reason.
tail_of() { printf '\n--- %s (last %s lines):\n' "$1" "$2"; tail -n "$2" "$1" 2>/dev/null | plain | sed 's/^/    /'; }

# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL helpers. CONN is the connection as pgbench/psql positional arguments (options, then dbname or URI).
CONN=()
sql() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 "${CONN[@]}" -c "$1" </dev/null; }

# initdb with the anchors' settings; listen on 127.0.0.1 only, no Unix socket (no clash with other servers).
init_server() {
    local dir=$1 port=$2
    as_pg "$PG_BIN/initdb" -A trust -U postgres -D "$dir" >"$dir.initdb.log" 2>&1 || fail "initdb $dir failed$(tail_of "$dir.initdb.log" 5)"
    cat >>"$dir/postgresql.conf" <<EOF

# pgbench cluster benchmark (bench/pgbench/run.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
fsync = on
synchronous_commit = on
max_wal_size = 1GB
EOF
}

start_server() {
    local dir=$1
    echo "pgdata $dir" >>"$SERVERS"   # registered before it starts, so a half-started server is still stopped
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$dir.log" -w -t 120 start >/dev/null 2>&1 ||
        fail "pg_ctl start $dir failed$(tail_of "$dir.log" 10)"
}

# The settings that decide commit cost, recorded per setup so the comparison can be checked afterwards.
record_settings() {
    sql "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name) FROM pg_settings
         WHERE name IN ('server_version', 'fsync', 'synchronous_commit', 'max_wal_size', 'shared_buffers', 'wal_level',
                        'full_page_writes', 'synchronous_standby_names', 'shared_preload_libraries')" \
        >"$WORK/$CURRENT.settings" || true
    log "  settings: $(cat "$WORK/$CURRENT.settings")"
}

pgbench_init() {
    log "  pgbench -i -s $SCALE"
    timeout 1800 "$PG_BIN/pgbench" -i -s "$SCALE" -q "${CONN[@]}" </dev/null >"$WORK/$CURRENT.init.log" 2>&1 ||
        fail "pgbench -i failed$(tail_of "$WORK/$CURRENT.init.log" 10)"
}

# Runs TPC-B at 1 and 8 clients, --runs times each, interleaved (run 1: c1, c8; run 2: c1, c8; ...) so that a slow
# phase of the shared machine does not fall on one client count only. Each result is a line in $WORK/results:
#   setup clients run tps latency_ms load1
measure() {
    local run c j out tps lat
    for ((run = 1; run <= RUNS; run++)); do
        for c in "${CLIENTS[@]}"; do
            j=$(( c >= 8 ? 2 : 1 ))
            # A checkpoint first, so no run pays for the previous run's dirty pages. (c)'s user may lack the right to.
            sql "CHECKPOINT" >/dev/null 2>&1 || log "  warning: CHECKPOINT failed (not allowed for this user?)"
            out="$WORK/$CURRENT.c$c.r$run.log"
            # A stuck commit (e.g. no quorum) would hang pgbench past -T: bound it.
            timeout $(( DURATION + 120 )) "$PG_BIN/pgbench" -c "$c" -j "$j" -T "$DURATION" "${CONN[@]}" </dev/null >"$out" 2>&1 ||
                fail "pgbench -c$c run $run failed (exit $?)$(tail_of "$out" 10)"
            tps="$(awk '/^tps = / {print $3; exit}' "$out")"
            lat="$(awk '/^latency average = / {print $4; exit}' "$out")"
            [ -n "$tps" ] && [ -n "$lat" ] || fail "pgbench -c$c run $run: no tps/latency in its output$(tail_of "$out" 10)"
            log "  -c$c -j$j -T$DURATION run $run/$RUNS: tps $tps, latency average $lat ms"
            echo "$CURRENT $c $run $tps $lat $(cut -d' ' -f1 /proc/loadavg)" >>"$WORK/results"
        done
    done
}

# ---------------------------------------------------------------------------------------------------------------
# (a) one plain server.
setup_a() {
    local port dir="$WORK/a/pg"
    port="$(free_ports 1)"
    mkdir -p "$WORK/a" && chown postgres:postgres "$WORK/a"
    init_server "$dir" "$port"
    start_server "$dir"
    CONN=(-h 127.0.0.1 -p "$port" -U postgres postgres)
    record_settings
    pgbench_init
    measure
}

# (b) primary + standbys s1, s2 (pg_basebackup -R, application_name in primary_conninfo), quorum commit ANY 1.
setup_b() {
    local port dir="$WORK/b" i n
    port="$(free_ports 3)"
    mkdir -p "$dir" && chown postgres:postgres "$dir"
    init_server "$dir/primary" "$port"
    start_server "$dir/primary"
    CONN=(-h 127.0.0.1 -p "$port" -U postgres postgres)
    # Load the data before the standbys exist: a base backup copies it in a second instead of replaying all its WAL.
    pgbench_init
    for i in 1 2; do
        log "  pg_basebackup -R -> s$i"
        # -R writes primary_conninfo from -d, application_name included; -C -S keeps the standby's WAL on the primary.
        as_pg "$PG_BIN/pg_basebackup" -d "host=127.0.0.1 port=$port user=postgres application_name=s$i" \
            -D "$dir/s$i" -X stream -R -C -S "s$i" -c fast >"$dir/s$i.basebackup.log" 2>&1 ||
            fail "pg_basebackup for s$i failed$(tail_of "$dir/s$i.basebackup.log" 5)"
        # The copied postgresql.conf carries the primary's port; the later setting wins.
        printf "port = %s\nhot_standby = on\n" "$(( port + i ))" >>"$dir/s$i/postgresql.auto.conf"
        start_server "$dir/s$i"
    done
    sql "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (s1, s2)'" && sql "SELECT pg_reload_conf()" >/dev/null ||
        fail "could not set synchronous_standby_names on the primary"
    # Measure only once both standbys stream and count for the quorum; otherwise (b) would be a different setup.
    for ((i = 0; i < 120; i++)); do
        n="$(sql "SELECT count(*) FROM pg_stat_replication
                  WHERE application_name IN ('s1', 's2') AND state = 'streaming' AND sync_state = 'quorum'" 2>/dev/null || echo 0)"
        [ "$n" = 2 ] && break
        sleep 0.5
    done
    [ "$n" = 2 ] || fail "standbys not both streaming with sync_state 'quorum' after 60 s: $(sql "SELECT application_name, state, sync_state FROM pg_stat_replication" 2>&1 | tr '\n' ';')"
    log "  pg_stat_replication: $(sql "SELECT string_agg(application_name || ' ' || state || ' ' || sync_state, ', ' ORDER BY application_name) FROM pg_stat_replication")"
    record_settings
    measure
}

# (c) storagectl's cluster: 3 safekeepers + a compute whose WAL goes through the walproposer.
# `./storagectl --dir DIR up --base-port PORT` from the repo root starts everything, creates and attaches the default
# timeline, returns with it running, and prints a line of its own that is a postgresql://user:password@127.0.0.1:port/postgres
# URI; `./storagectl --dir DIR down` stops all of it. Safekeepers take PORT..PORT+2 and PORT+10..PORT+12 (HTTP), the
# compute VM PORT+20 (gRPC), PORT+30 (HTTP) and PORT+40 (PostgreSQL): 50 free ports are reserved from PORT.
setup_c() {
    local port dir="$WORK/c/cluster" uri i
    port="$(free_ports 50)"
    mkdir -p "$WORK/c" && chown postgres:postgres "$WORK/c"
    echo "storagectl $dir" >>"$SERVERS"
    log "  ./storagectl --dir $dir up --base-port $port (builds Release first)"
    (cd "$REPO" && NO_COLOR=1 timeout 900 ./storagectl --dir "$dir" up --base-port "$port" </dev/null >"$WORK/c/up.log" 2>&1) ||
        fail "'storagectl up' failed (exit $?)$(tail_of "$WORK/c/up.log" 15)"
    # The URI is a line of its own; strip colour codes and CRs in case the console library added them.
    uri="$(plain <"$WORK/c/up.log" | sed 's/[[:space:]]*$//' | grep -m1 -E '^postgresql://' || true)"
    [ -n "$uri" ] || fail "'storagectl up' printed no line starting with postgresql:// (does 'up' start the compute yet?)$(tail_of "$WORK/c/up.log" 15)"
    log "  compute: $(sed -E 's#(//[^:/@]*):[^@]*@#\1:***@#' <<<"$uri")"   # the password stays out of the log
    CONN=("$uri")                          # pgbench and psql take a URI as dbname; the password is inside it
    for ((i = 0; i < 120; i++)); do sql "SELECT 1" >/dev/null 2>&1 && break; sleep 0.5; done
    sql "SELECT 1" >/dev/null 2>&1 || fail "compute at the printed URI does not answer: $(sql "SELECT 1" 2>&1 | tail -n 2)"
    record_settings
    pgbench_init
    measure
}

# Runs one setup in a background subshell: there `set -e` (and fail) stop the setup at its first error without ending
# the whole benchmark (inside `if` or `||`, bash would ignore set -e). Then stops its servers and frees its disk.
run_setup() {
    local s=$1 rc=0
    CURRENT=$s
    log "($s) ${SETUP_NAME[$s]}"
    (
        set -eE
        trap 'echo "line $LINENO: \"$BASH_COMMAND\" exited with $?" >"$WORK/$CURRENT.error.cmd"' ERR
        "setup_$s"
    ) &
    SETUP_PID=$!
    wait "$SETUP_PID" || rc=$?
    SETUP_PID=""
    stop_servers
    rm -rf "${WORK:?}/$s"
    if [ $rc -ne 0 ]; then
        [ -s "$WORK/$s.error" ] || cat "$WORK/$s.error.cmd" >"$WORK/$s.error" 2>/dev/null || echo "exited with $rc" >"$WORK/$s.error"
        log "($s) FAILED: $(cat "$WORK/$s.error")"
    fi
}

# ---------------------------------------------------------------------------------------------------------------
# Statistics over the results file: "min median max" of column COL (4 = tps, 5 = latency) for setup S, clients C.
stats() {
    awk -v s="$1" -v c="$2" '$1 == s && $2 == c {print $'"$3"'}' "$WORK/results" 2>/dev/null | sort -g |
        awk '{v[NR] = $1} END {
            if (NR == 0) exit
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%s %s %s\n", v[1], m, v[NR] }'
}
median() { stats "$1" "$2" "$3" | awk '{print $2}'; }
ratio() {  # TPS ratio x/y at C clients, empty if either is missing
    local x y
    x="$(median "$1" "$3" 4)"; y="$(median "$2" "$3" 4)"
    [ -n "$x" ] && [ -n "$y" ] && awk -v x="$x" -v y="$y" 'BEGIN {printf "%.3f", x / y}' || true
}
status() {  # ok | failed | skipped
    if [ -s "$WORK/$1.error" ]; then echo failed
    elif [ -n "$(median "$1" "${CLIENTS[0]}" 4)" ]; then echo ok
    else echo skipped; fi
}

json_str() {  # a JSON string literal (colour codes and other control characters dropped: JSON forbids them raw)
    local s
    s="$(printf '%s' "$1" | plain | tr -d '\000-\010\013-\037')"
    s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\r'/}; s=${s//$'\t'/ }
    printf '"%s"' "$s"
}
json_num() { if [ -n "$1" ]; then printf '%s' "$1"; else printf 'null'; fi; }

print_report() {
    local s c st tps lat r
    echo
    echo "$(nproc) cores; load average $LOAD_BEFORE before, $LOAD_AFTER after; pgbench scale $SCALE, -T $DURATION s, median of $RUNS run(s)"
    printf '%-50s %7s  %-28s %14s\n' "setup" "clients" "TPS median [min-max]" "avg latency ms"
    printf '%s\n' "$(printf '%.0s-' {1..102})"
    for s in a b c; do
        st="$(status "$s")"
        if [ "$st" != ok ]; then
            printf '%-50s %7s  %s\n' "($s) ${SETUP_NAME[$s]}" "-" "$st$( [ "$st" = failed ] && printf ': %s' "$(head -n 1 "$WORK/$s.error" | cut -c 1-120)")"
            continue
        fi
        for c in "${CLIENTS[@]}"; do
            read -r tmin tmed tmax < <(stats "$s" "$c" 4)
            lat="$(median "$s" "$c" 5)"
            printf '%-50s %7s  %-28s %14.3f\n' "($s) ${SETUP_NAME[$s]}" "$c" \
                "$(printf '%.0f [%.0f-%.0f]' "$tmed" "$tmin" "$tmax")" "$lat"
        done
    done
    echo
    printf '%-16s %10s %10s\n' "TPS ratio" "1 client" "8 clients"
    for r in "c/a" "c/b"; do
        printf '%-16s %10s %10s\n' "$r" "$(ratio "${r%/*}" "${r#*/}" 1 || true)" "$(ratio "${r%/*}" "${r#*/}" 8 || true)"
    done
    r="$(ratio c b 8)"
    if [ -z "$r" ]; then echo "goal: c/b >= 0.8 at 8 clients: n/a (c or b not measured)"
    elif awk -v r="$r" 'BEGIN {exit !(r >= 0.8)}'; then echo "goal: c/b >= 0.8 at 8 clients: $r  PASS"
    else echo "goal: c/b >= 0.8 at 8 clients: $r  MISS"; fi
}

write_json() {
    local s c first_s=1 first_c first_r r tmin tmed tmax lat goal
    {
        printf '{\n'
        printf '  "when": %s,\n' "$(json_str "$STARTED")"
        printf '  "cores": %s,\n' "$(nproc)"
        printf '  "loadAverageBefore": %s,\n' "$(json_str "$LOAD_BEFORE")"
        printf '  "loadAverageAfter": %s,\n' "$(json_str "$LOAD_AFTER")"
        printf '  "pgBin": %s,\n' "$(json_str "$PG_BIN")"
        printf '  "pgVersion": %s,\n' "$(json_str "$("$PG_BIN/postgres" --version)")"
        printf '  "scratchDirectory": %s,\n' "$(json_str "$TMP_PARENT")"
        printf '  "scale": %s, "durationSeconds": %s, "runs": %s,\n' "$SCALE" "$DURATION" "$RUNS"
        printf '  "setups": {\n'
        for s in a b c; do
            [ $first_s -eq 1 ] || printf ',\n'; first_s=0
            printf '    "%s": {\n' "$s"
            printf '      "name": %s,\n' "$(json_str "${SETUP_NAME[$s]}")"
            printf '      "status": "%s",\n' "$(status "$s")"
            if [ -s "$WORK/$s.error" ]; then printf '      "error": %s,\n' "$(json_str "$(cat "$WORK/$s.error")")"; fi
            if [ -s "$WORK/$s.settings" ]; then printf '      "settings": %s,\n' "$(json_str "$(cat "$WORK/$s.settings")")"; fi
            printf '      "results": ['
            first_c=1
            for c in "${CLIENTS[@]}"; do
                read -r tmin tmed tmax < <(stats "$s" "$c" 4) || continue
                lat="$(median "$s" "$c" 5)"
                [ $first_c -eq 1 ] || printf ','; first_c=0
                printf '\n        {"clients": %s, "threads": %s, "tpsMedian": %s, "tpsMin": %s, "tpsMax": %s, "latencyMsMedian": %s, "runs": [' \
                    "$c" "$(( c >= 8 ? 2 : 1 ))" "$tmed" "$tmin" "$tmax" "$lat"
                first_r=1
                while read -r _ _ run tps l load1; do
                    [ $first_r -eq 1 ] || printf ', '; first_r=0
                    printf '{"run": %s, "tps": %s, "latencyMs": %s, "load1After": %s}' "$run" "$tps" "$l" "$load1"
                done < <(awk -v s="$s" -v c="$c" '$1 == s && $2 == c' "$WORK/results" 2>/dev/null)
                printf ']}'
            done
            [ $first_c -eq 1 ] && printf ']\n' || printf '\n      ]\n'
            printf '    }'
        done
        printf '\n  },\n'
        printf '  "tpsRatios": {\n'
        printf '    "c/a": {"1": %s, "8": %s},\n' "$(json_num "$(ratio c a 1)")" "$(json_num "$(ratio c a 8)")"
        printf '    "c/b": {"1": %s, "8": %s}\n' "$(json_num "$(ratio c b 1)")" "$(json_num "$(ratio c b 8)")"
        printf '  },\n'
        r="$(ratio c b 8)"
        if [ -z "$r" ]; then goal=null; elif awk -v r="$r" 'BEGIN {exit !(r >= 0.8)}'; then goal=true; else goal=false; fi
        printf '  "goal": {"description": "c/b TPS >= 0.8 at 8 clients", "value": %s, "met": %s}\n' "$(json_num "$r")" "$goal"
        printf '}\n'
    } >"$OUT.tmp"
    mv "$OUT.tmp" "$OUT"
}

# ---------------------------------------------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
STARTED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# Other work on this shared machine skews every number here: record how busy it was.
LOAD_BEFORE="$(loadavg)"
log "pgbench cluster benchmark: setups ${SETUPS[*]}, scale $SCALE, -T $DURATION s x $RUNS run(s); $(nproc) cores, load $LOAD_BEFORE; scratch $WORK"
: >"$WORK/results"
for s in "${SETUPS[@]}"; do run_setup "$s"; done
LOAD_AFTER="$(loadavg)"
print_report
write_json
echo "results written to $OUT"
# Failing setups are reported above and in the JSON; exit non-zero only if nothing at all was measured.
[ -s "$WORK/results" ]

#!/usr/bin/env bash
# Long chaos run: for each seed a fresh local cluster (storagectl up in a temp folder, free ports), then
# `storagectl chaos --seed N --duration D --json` under the workloads (append log with synchronous_commit
# on/remote_write/remote_apply, bank, register read-your-writes), then down and a sweep of leftovers by PID.
# Default: seeds 1,2,3,4 of 3 minutes each (about 15-20 minutes with cluster starts and heals on 2 cores).
# Options: --seeds 1,2,3 --duration 3m --faults kill-vm,stop-vm (only these kinds) --out FILE --keep (keep the
# cluster folders and logs). Results: bench/results/chaos-<date>.md (a table per seed, per fault kind, every
# violation, each timeline). Exit code 0 when no seed lost an acknowledged write or saw a violation. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

seeds=1,2,3,4
duration=3m
faults=""
out="bench/results/chaos-$(date -u +%Y-%m-%d).md"
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --faults) faults=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "bench-chaos: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v python3 >/dev/null || { echo "bench-chaos: needs python3 to write the report" >&2; exit 2; }

dotnet build src/Cli -c Release -nologo -v q >/dev/null
ctl=(dotnet "$repo/src/Cli/bin/Release/net10.0/storagectl.dll")
work=$(mktemp -d /tmp/bench-chaos-XXXXXX)
chmod 755 "$work" # PostgreSQL runs as postgres and must reach the clusters' folders
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# A base port whose ports (base..+2, +5..+7, +10..+12, +15..+19) are all free on 127.0.0.1.
free_base() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    base = random.randint(20000, 60000)
    ok = True
    for off in (0, 1, 2, 5, 6, 7, 10, 11, 12, 15, 16, 17, 18, 19):
        s = socket.socket()
        try: s.bind(("127.0.0.1", base + off))
        except OSError: ok = False
        finally: s.close()
        if not ok: break
    if ok:
        print(base); break
PY
}

# Every process naming the folder $1 on its command line, and their descendants (PostgreSQL backends).
owned_pids() {
  python3 - "$1" <<'PY'
import os, sys
folder, parents, roots = sys.argv[1], {}, []
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        stat = open(f"/proc/{p}/stat").read()
    except OSError:
        continue
    parents[int(p)] = int(stat[stat.rindex(")") + 2:].split()[1])
    if folder in cmd and int(p) != os.getpid():
        roots.append(int(p))
found, queue = set(roots), list(roots)
while queue:
    parent = queue.pop()
    for child, pp in parents.items():
        if pp == parent and child not in found:
            found.add(child); queue.append(child)
print(" ".join(map(str, sorted(found))))
PY
}

# Down, then SIGCONT + SIGKILL by PID whatever still names the cluster's folder (a VM a killed proxy never recorded).
teardown() {
  local dir=$1 pids
  pids=$(owned_pids "$dir/") # with the slash: seed-1 is not seed-10
  [ -n "$pids" ] && kill -CONT $pids 2>/dev/null || true
  "${ctl[@]}" --dir "$dir/.storage" down >"$dir/down.log" 2>&1 || true
  pids=$(owned_pids "$dir/")
  [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
}

status=0
IFS=, read -r -a seed_list <<<"$seeds"
for seed in "${seed_list[@]}"; do
  dir="$work/seed-$seed"
  mkdir -p "$dir" && chmod 755 "$dir"
  trap 'teardown "$dir"' EXIT INT TERM
  base=$(free_base)
  echo "== seed $seed: cluster in $dir (base port $base)"
  if ! "${ctl[@]}" --dir "$dir/.storage" up --base-port "$base" >"$dir/up.log" 2>&1; then
    echo "bench-chaos: up failed for seed $seed; see $dir/up.log" >&2
    echo '{"seed": '"$seed"', "error": "storagectl up failed"}' >"$dir/report.json"
    status=1
  else
    args=(chaos --seed "$seed" --duration "$duration" --json)
    [ -n "$faults" ] && args+=(--faults "$faults")
    set +e
    "${ctl[@]}" --dir "$dir/.storage" "${args[@]}" >"$dir/report.json" 2> >(tee "$dir/timeline.log" >&2)
    rc=$?
    set -e
    echo "== seed $seed: exit code $rc"
    [ "$rc" -ne 0 ] && status=1
    [ -s "$dir/report.json" ] || echo '{"seed": '"$seed"', "error": "storagectl chaos exited with '"$rc"' and no report; see timeline.log"}' >"$dir/report.json"
  fi
  teardown "$dir"
  trap - EXIT INT TERM
done

mkdir -p "$(dirname "$out")"
python3 - "$work" "$out" "$duration" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)" "$seeds" "$faults" <<'PY'
import json, os, sys, datetime
work, out, duration, load_before, load_after, cores, seeds, faults = sys.argv[1:]
runs = []
for seed in seeds.split(","):
    d = os.path.join(work, f"seed-{seed}")
    try: report = json.load(open(os.path.join(d, "report.json")))
    except (OSError, ValueError) as e: report = {"seed": int(seed), "error": f"no report ({e})"}
    timeline = open(os.path.join(d, "timeline.log")).read() if os.path.exists(os.path.join(d, "timeline.log")) else ""
    runs.append((report, timeline))

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
lines = [f"# Chaos run, {now}", "",
         f"{cores} cores; load average {load_before} before, {load_after} after; seeds {seeds}, faults for {duration} each"
         + (f", only {faults}" if faults else ", every fault kind") + "; each seed on a fresh cluster (`storagectl up`), "
         "workloads through the proxy: append log (synchronous_commit on / remote_write / remote_apply), bank (5 accounts), "
         "register read-your-writes. LOST = acknowledged and missing at the end (must be 0).", "",
         "| seed | steps | faults | writes tried | acknowledged | failed | unknown | LOST | phantoms | bank violations | stale reads | never healed | verdict |",
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
kinds = {}
for r, _ in runs:
    if "error" in r:
        lines.append(f"| {r['seed']} | | | | | | | | | | | | {r['error']} |"); continue
    verdict = {0: "ok", 2: "**VIOLATED**", 3: "a fault never healed"}.get(r["exitCode"], str(r["exitCode"]))
    lines.append(f"| {r['seed']} | {r['steps']} | {sum(f['injected'] for f in r['faults'])} | {r['tried']} | {r['acknowledged']} | {r['failed']} | "
                 f"{r['unknown']} | {r['lost']} | {r['phantoms']} | {r['bankViolations']} | {r['staleReads']} | {r['unhealed']} | {verdict} |")
    for f in r["faults"]:
        k = kinds.setdefault(f["kind"], {"injected": 0, "acked": 0, "lost": 0, "longest": 0.0, "unhealed": 0})
        k["injected"] += f["injected"]; k["acked"] += f["acknowledgedDuring"]; k["lost"] += f["lost"]
        k["longest"] = max(k["longest"], f["longestUnavailableSeconds"]); k["unhealed"] += f["unhealed"]
lines += ["", "## Per fault kind (all seeds)", "",
          "| fault | injected | acknowledged during | lost | longest without a commit (s) | never healed |", "|---|---:|---:|---:|---:|---:|"]
for name in sorted(kinds):
    k = kinds[name]
    lines.append(f"| {name} | {k['injected']} | {k['acked']} | {k['lost']} | {k['longest']:.1f} | {k['unhealed']} |")
violations = [(r["seed"], v) for r, _ in runs if "error" not in r for v in r["violations"]]
lines += ["", "## Violations", ""] + ([f"- seed {s}: {v}" for s, v in violations] or ["None."])
lines += ["", "## Timelines", ""]
for r, timeline in runs:
    lines += [f"<details><summary>seed {r['seed']}</summary>", "", "```", timeline.rstrip(), "```", "", "</details>", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines).split("## Timelines")[0])
PY
echo "results: $out"
[ "$keep" -eq 1 ] && echo "cluster folders and logs: $work" || rm -rf "$work"
exit "$status"

#!/usr/bin/env bash
# Wall time of one suite of single-thread cells on a 1-node vs a 2-node Ray cluster
# (issue 9's acceptance: 2 nodes <= 0.6 x the time of 1).
#
# Run it ALONE on the machine (anything else running skews both times). Both nodes run
# on this machine, each pinned to its own core (taskset) with --num-cpus 1; every cell
# uses --threads 1, so two cells never share a core. The cluster lives in a private
# network and PID namespace (needs root): it listens on loopback only, and every process
# it starts dies with the namespace.
#
#   scripts/ray_scaling.sh                      # the default suite below
#   scripts/ray_scaling.sh --tasks digits --epochs 3    # your own `twinbench run` options
#
# Env: PYTHON (default .venv/bin/python), CORES (two CPU ids; default 1,2 with 3+ CPUs,
# else 0,1; the driver then shares a core with a node, it mostly sleeps in ray.wait).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
NCPU=$(nproc)
if [ "$NCPU" -lt 2 ]; then echo "error: needs 2 CPUs, this machine has $NCPU" >&2; exit 2; fi
if [ "$NCPU" -ge 3 ]; then CORES=${CORES:-1,2}; else CORES=${CORES:-0,1}; fi
IFS=, read -r CORE_A CORE_B <<<"$CORES"
if [ "$#" -gt 0 ]; then SUITE=("$@")
else SUITE=(--tasks quick --epochs 2 --no-loadgen); fi

if [ -z "${TB_SCALING_INSIDE:-}" ]; then
  for tool in unshare ip taskset; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 2; }
  done
  export TB_SCALING_INSIDE=1 PY CORE_A CORE_B
  exec unshare --net --pid --fork --mount-proc bash "$0" "$@"
fi

ip link set lo up
export RAY_USAGE_STATS_ENABLED=0 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
# Token auth as `twinbench worker` sets it: nodes and driver share this fresh token.
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN="$("$PY" -c 'import secrets; print(secrets.token_hex(32))')"
W=$(mktemp -d /tmp/tbscale-XXXXXX)   # short: Ray's socket paths must stay < 108 chars
PORT=6390
TB=("$PY" -m twinbench.cli)
trap '"$(dirname "$PY")/ray" stop --force >/dev/null 2>&1 || true' EXIT

start_node() {  # name core role-args... ; its own temp dir and worker ports
  local name=$1 core=$2; shift 2
  taskset -c "$core" "${TB[@]}" worker "$@" --node-ip-address 127.0.0.1 --num-cpus 1 \
    --start -- --temp-dir="$W/$name" >"$W/$name.log" 2>&1 \
    || { cat "$W/$name.log"; exit 1; }
}

timed_run() {  # label [more options]: runs the suite, prints its wall time in seconds
  local t0 t1 label=$1; shift
  t0=$(date +%s.%N)
  "${TB[@]}" run "${SUITE[@]}" "$@" --threads 1 --executor ray --ray-address 127.0.0.1:$PORT \
    --db "$W/history.db" --out "$W/$label" >"$W/$label.log" 2>&1 \
    || { tail -40 "$W/$label.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  "$PY" -c "print(f'{$t1 - $t0:.1f}')"
}

start_node head "$CORE_A" --head --port $PORT \
  --min-worker-port=10002 --max-worker-port=10999 --dashboard-agent-listen-port=52365
# Not timed: fills the page cache with every framework's files, so the first timed run
# does not pay for cold disk reads that the second would not.
timed_run warmup --epochs 1 --latency-calls 5 >/dev/null  # (last option given wins)
T1=$(timed_run one_node)
start_node worker "$CORE_B" --address 127.0.0.1:$PORT \
  --min-worker-port=11002 --max-worker-port=11999 --dashboard-agent-listen-port=52366
T2=$(timed_run two_nodes)

"$PY" - "$W/history.db" "$T1" "$T2" "${SUITE[*]}" "$CORE_A" "$CORE_B" <<'PY'
import json, sqlite3, sys
from collections import Counter
db, t1, t2, suite, a, b = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), *sys.argv[4:]
con = sqlite3.connect(db)
runs = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY created, rowid")]
print(f"suite: twinbench run {suite} --threads 1 --executor ray  (nodes on cores {a} and {b})")
for label, run, t in (("1 node ", runs[-2], t1), ("2 nodes", runs[-1], t2)):
    cells = [json.loads(d) for (d,) in con.execute(
        "SELECT data FROM cells WHERE run_id = ? AND phase = 'full'", (run,))]
    status = Counter(c["status"] for c in cells)
    nodes = Counter(c.get("node", {}).get("ray_node_id", "?")[:8] for c in cells)
    print(f"{label}: {t:7.1f} s  run {run}  cells {dict(status)}  per node {dict(nodes)}")
print(f"ratio 2 nodes / 1 node: {t2 / t1:.2f}  (goal <= 0.60)")
PY
echo "details: $W (history.db: twinbench show RUN_ID --db $W/history.db; *.log)"

#!/usr/bin/env bash
# The rate sweep of BENCHMARKS.md: `ezpoll bench --separate-processes` at each rate, RUNS
# times, then the median of each figure per rate. Needs a release build and wrk
# (./scripts/setup.sh --bench). Extra arguments go to every bench run.
#   scripts/bench-sweep.sh "1000 2500 4000" 3 --http-client nio
set -euo pipefail
cd "$(dirname "$0")/.."
rates=${1:-"1000 2500 4000 5000 6000"}
runs=${2:-3}
shift $(( $# < 2 ? $# : 2 ))
out=$(mktemp -d /tmp/ezpoll-sweep.XXXXXX)
for rate in $rates; do
  for run in $(seq 1 "$runs"); do
    echo "sweep: R=$rate run $run/$runs (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    .build/release/ezpoll bench --separate-processes --rate "$rate" --duration 30 --warmup 8 --time-scale 10 \
      --max-concurrent-calls 256 --raw-http-seconds 2 --json "$@" 2>/dev/null > "$out/r$rate-$run.json"
  done
done
python3 - "$out" <<'PY'
import json, pathlib, statistics, sys
runs = {}
for path in sorted(pathlib.Path(sys.argv[1]).glob("r*.json")):
    report = json.loads(path.read_text())
    runs.setdefault(report["settings"]["rate"], []).append(report)
print("| R (tasks/s) | runs | kept up | on schedule | calls/s | CPU µs per call | cores | RSS MiB | detection p50 / p99 (API s) | max lag | wrk ceiling (req/s) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for rate in sorted(runs):
    rs = runs[rate]
    p = [r["pipelineProcess"] for r in rs]
    med = lambda values: statistics.median(values)
    print(f"| {rate:,.0f} | {len(rs)} | {sum(r['throughput']['keptUp'] for r in rs)}/{len(rs)} "
          f"| {sum(x['onSchedule'] for x in p)}/{len(rs)} | {med([x['callsPerSecond'] for x in p]):,.0f} "
          f"| {med([x['cpuMicrosecondsPerCall'] for x in p]):.1f} | {med([x['cores'] for x in p]):.2f} "
          f"| {med([x['rssMiB'] for x in p]):.1f} | {med([x['detectionP50APISeconds'] for x in p]):.2f} / "
          f"{med([x['detectionP99APISeconds'] for x in p]):.2f} | {med([r['throughput']['maxInputLag'] for r in rs]):,.0f} | {med([r['http']['ceilingRequestsPerSecond'] or 0 for r in rs]):,.0f} |")
print(f"\nraw reports: {sys.argv[1]}", file=sys.stderr)
PY

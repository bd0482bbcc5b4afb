#!/usr/bin/env bash
# `make bench`: the five benchmarks, one after the other, against 127.0.0.1 only (about five minutes).
# Their output is shown and kept in bench/results/run-<time>.log (ignored by git); bench/README.md
# explains the figures. BENCH_DB and BENCH_REDIS override the database (parrain_bench*, recreated)
# and the Redis database (redis://127.0.0.1:6379/3) the benchmarks use.
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
    # The load generator comes from the system's packages; a new machine gets it here.
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo -n"
    if command -v apt-get >/dev/null 2>&1; then
        echo "bench: installing wrk (apt-get)"
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null ||
            { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null; }
    fi
    if ! command -v wrk >/dev/null 2>&1; then
        echo "bench: wrk is not installed and could not be: install it (Debian/Ubuntu: apt-get install wrk)." >&2
        exit 2
    fi
fi
if [ ! -x .venv/bin/python ]; then
    echo "bench: .venv is missing: run \`make install\` first." >&2
    exit 2
fi

args=(--db "${BENCH_DB:-parrain_bench}" --redis "${BENCH_REDIS:-redis://127.0.0.1:6379/3}")
mkdir -p bench/results
log="bench/results/run-$(date +%Y%m%d-%H%M%S).log"
status=0

.venv/bin/python bench/redirect.py "${args[@]}" 2>&1 | tee -a "$log"
code=${PIPESTATUS[0]}
[ "$code" -eq 0 ] || status=$code
echo | tee -a "$log"
.venv/bin/python bench/program_page.py --db "${BENCH_DB:-parrain_bench}_page" --redis "${BENCH_REDIS:-redis://127.0.0.1:6379/3}" 2>&1 | tee -a "$log"
code=${PIPESTATUS[0]}
[ "$code" -eq 0 ] || status=$code
echo | tee -a "$log"
.venv/bin/python bench/signups.py --db "${BENCH_DB:-parrain_bench}_signups" --redis "${BENCH_REDIS:-redis://127.0.0.1:6379/3}" 2>&1 | tee -a "$log"; code=${PIPESTATUS[0]}; [ "$code" -eq 0 ] || status=$code; echo | tee -a "$log"
.venv/bin/python bench/rewards.py "${args[@]}" 2>&1 | tee -a "$log"
code=${PIPESTATUS[0]}
[ "$code" -eq 0 ] || status=$code
echo | tee -a "$log"
.venv/bin/python bench/inprocess.py --redis "${BENCH_REDIS:-redis://127.0.0.1:6379/3}" 2>&1 | tee -a "$log"
code=${PIPESTATUS[0]}
[ "$code" -eq 0 ] || status=$code
echo | tee -a "$log"
.venv/bin/python bench/consoles.py --db "${BENCH_DB:-parrain_bench}_consoles" --redis "${BENCH_REDIS:-redis://127.0.0.1:6379/3}" 2>&1 | tee -a "$log"; code=${PIPESTATUS[0]}; [ "$code" -eq 0 ] || status=$code; echo | tee -a "$log"
.venv/bin/python bench/stress.py --db "${BENCH_DB:-parrain_bench}_stress" --redis "${BENCH_REDIS:-redis://127.0.0.1:6379/3}" 2>&1 | tee -a "$log"
code=${PIPESTATUS[0]}
[ "$code" -eq 0 ] || status=$code

if [ "${BENCH_VOLUME:-0}" = 1 ]; then
    # Opt-in: 50 million clicks and 5 million signups (tens of minutes, about 15 GB of disk, dropped after).
    echo | tee -a "$log"
    .venv/bin/python bench/volume.py --db "${BENCH_DB:-parrain_bench}_volume" --redis "${BENCH_REDIS:-redis://127.0.0.1:6379/3}" --drop 2>&1 | tee -a "$log"
    code=${PIPESTATUS[0]}
    [ "$code" -eq 0 ] || status=$code
fi

echo "bench: full output kept in $log" | tee -a "$log"
exit "$status"

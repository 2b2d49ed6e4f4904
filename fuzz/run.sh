#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) with cargo-fuzz
# (libFuzzer, the nightly toolchain), starting from the committed seed
# corpus (fuzz/corpus/<target>, read only; what the run finds goes to
# fuzz/work/<target>, not committed), then the ASGI body
# parser's Atheris target when atheris is installed. Prints one line per
# target: seconds run, executions, and what it found.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# A crash is saved under fuzz/artifacts/<target>/; copy it to
# fuzz/regressions/<target>/ (the normal suite replays that directory:
# fuzz/harness/tests/corpus.rs) once it is fixed.
set -uo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
status=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "artifacts/$t"
    log=$(mktemp)
    cargo +nightly fuzz run "$t" "work/$t" "corpus/$t" -- -max_total_time="$seconds" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    found="nothing"
    if ((rc != 0)); then
        found="a failure (exit $rc): $(grep -m1 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log")"
        status=1
        tail -40 "$log"
    fi
    summary+=("$(printf '%-16s %5ss  %12s executions  %s' "$t" "$seconds" "${execs:-?}" "$found")")
    rm -f "$log"
done
# PYTHON: an interpreter with atheris and the ringfence wheel (for example
# target/python-venv/bin/python after python/run-tests.sh and
# `pip install atheris` there).
py=${PYTHON:-python3}
if "$py" -c 'import atheris, ringfence' 2>/dev/null; then
    mkdir -p work/asgi_body
    "$py" asgi_body.py -max_total_time="$seconds" -print_final_stats=1 work/asgi_body corpus/asgi_body 2>&1 | tail -5
else
    echo "(atheris or the ringfence wheel is not installed: the ASGI body target is skipped; pytest runs it briefly: python/tests/test_fuzz_asgi.py)"
fi
printf '%s\n' "${summary[@]}"
exit $status

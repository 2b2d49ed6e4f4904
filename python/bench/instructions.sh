#!/usr/bin/env bash
# Instructions per Guard.check from Python and natively (see instructions.py).
# Usage: python/bench/instructions.sh [PYTHON]   (PYTHON with ringfence installed;
# default target/python-venv/bin/python, as python/run-tests.sh leaves it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${1:-$here/../../target/python-venv/bin/python}
count() {
    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$python" "$here/instructions.py" "$@" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for kinds in 0 2 8; do
    for mode in native py; do
        a=$(count "$mode" "$kinds" 1000)
        b=$(count "$mode" "$kinds" 31000)
        printf '%d fingerprint(s), %-6s %6d instructions per check\n' "$kinds" "$mode" $(((b - a) / 30000))
    done
done

"""Instructions per Guard.check, from Python and natively, counted by callgrind.

Run: python/bench/instructions.sh (needs valgrind). Instruction counts do not
move with the machine's load, so they show what the Python call adds to the
native check with much less noise than timings (runs still differ by a few
hundred instructions a check: the guard's in-memory maps are seeded at
random). This script is what callgrind runs: one request, checked `n` times,
either from a Python loop (`py`) or in Rust's loop (`native`), on a manual
clock; the driver subtracts a run of 1,000 from a run of 31,000 so that
start-up cancels out.
"""

import sys

import ringfence

mode, kinds, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
g = ringfence.Guard({"account_requests_per_minute": 10**9, "account_tokens_per_minute": 10**12}, accounts=1000, manual_clock=True)
fp = {f"kind{j}": f"value-{j}" for j in range(kinds)}
check = g.check
g._time_native(["acct"], [fp], rounds=10)
if mode == "py":
    for _ in range(n):
        check("acct", fp)
else:
    g._time_native(["acct"], [fp], rounds=n)

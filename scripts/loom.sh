#!/usr/bin/env bash
# Model-checks the lock-free cells with loom: the limiter's GCRA cells and
# table (src/limit/limiter/loom_tests.rs) and the union-find forests
# (src/link/tables/loom_tests.rs). Built with `--cfg loom` into its own
# target directory, so the normal build's cache is untouched.
#   scripts/loom.sh            every model
#   scripts/loom.sh NAME       the models whose name contains NAME
# LOOM_MAX_PREEMPTIONS bounds the preemptions per execution (unbounded by
# default: every interleaving).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/loom}"
exec cargo test --release --lib -p ringfence "${1:-loom_tests}" -- --nocapture --test-threads=2

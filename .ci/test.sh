#!/usr/bin/env bash
# The one test command of ringfence (see README.md, "Testing").
# On a fresh machine it installs what the tests need, builds, and runs every
# suite; it exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components (rustfmt, clippy)"
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

step "format: cargo fmt --check"
cargo fmt --all -- --check

step "lint: cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "redis-server, for the fleet's tests against a real Redis on loopback"
if ! command -v redis-server >/dev/null 2>&1; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
redis-server --version
# The fleet's Redis tests start their own servers; here they must not skip.
export RINGFENCE_REQUIRE_REDIS=1

step "Rust: unit, integration and doc tests"
cargo test --workspace --locked

step "model checker: loom over the limiter's cells and the union-find (scripts/loom.sh)"
bash scripts/loom.sh

step "C and C++: the C ABI from C and C++ (static and shared, ASan+UBSan, valgrind), the header, the example gateway"
bash bindings/c/run-tests.sh

step "Python: build the wheel with maturin, pip install it, run pytest (python/run-tests.sh)"
bash python/run-tests.sh

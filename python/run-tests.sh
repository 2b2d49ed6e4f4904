#!/usr/bin/env bash
# The Python package's test command (run by .ci/test.sh): builds the wheel
# with maturin, installs it with pip into a fresh virtual environment, and
# runs the pytest suite against the installed package.
#
#   python/run-tests.sh            # from anywhere in the repository
#
# Environment: PYTHON (the interpreter, default python3, CPython >= 3.10),
# RINGFENCE_VENV (the environment, default target/python-venv; rebuilt each
# run), CARGO_TARGET_DIR (as for cargo). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
python_dir=$(pwd)
root=$(cd .. && pwd)

PYTHON=${PYTHON:-python3}
target=${CARGO_TARGET_DIR:-$root/target}
venv=${RINGFENCE_VENV:-$target/python-venv}
wheels=$target/wheels-ringfence

echo "python: $("$PYTHON" --version) at $(command -v "$PYTHON")"
rm -rf "$venv" "$wheels"
"$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$python_dir/requirements-build.txt"
# --release: the wheel users get (and the one the benchmark measures).
"$venv/bin/maturin" build --release --quiet --out "$wheels"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "$wheels"/ringfence-*.whl -r "$python_dir/requirements-test.txt"
# The installed package is tested, never the source tree: pytest runs from
# python/ with tests/ on its path, and python/ringfence is not importable
# from there (pytest's rootdir is not put on sys.path).
(cd / && "$venv/bin/python" -c 'import ringfence; assert "site-packages" in ringfence.__file__, ringfence.__file__')
exec "$venv/bin/pytest" -p no:cacheprovider "$@"

"""The ASGI body parser under Atheris (coverage-guided): run by
``fuzz/run.sh`` when ``atheris`` and the ``ringfence`` wheel are
installed. The target is ``python/tests/asgi_fuzz.py``."""

import os
import sys

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python", "tests"))
with atheris.instrument_imports():
    import ringfence.asgi  # noqa: F401

from asgi_fuzz import Target  # noqa: E402

_target = Target()


def main() -> None:
    atheris.Setup(sys.argv, _target.one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""The Python snippets of the README and of ``docs/*.md`` run as written.

Every fenced ``python`` block is executed on its own, in a fresh namespace,
from an empty working folder that holds an empty ``ringfence.toml`` (the
file the FastAPI snippet loads: the defaults).
"""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def snippets() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for i, m in enumerate(FENCE.finditer(text)):
            line = text.count("\n", 0, m.start()) + 1
            found.append((f"{page.relative_to(ROOT)}:{line}", m.group(1)))
    return found


def test_the_pages_have_python_snippets() -> None:
    pages = {where.split(":")[0] for where, _ in snippets()}
    assert "README.md" in pages
    assert "docs/python.md" in pages


@pytest.mark.parametrize(("where", "code"), snippets(), ids=[w for w, _ in snippets()])
def test_snippet_runs(where: str, code: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ringfence.toml").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, where, "exec"), {"__name__": "snippet"})

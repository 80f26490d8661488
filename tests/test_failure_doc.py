"""docs/failure.md names real tests: every file and test or class it cites exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITED = re.compile(r"`(tests/[\w/]+\.py)((?:::\w+)*)`|`::(\w+)")


def test_every_cited_test_exists() -> None:
    """Each `tests/…py::Name` (and each `::Name` after it) is defined in that file."""
    text = (ROOT / "docs" / "failure.md").read_text()
    current: Path | None = None
    missing = []
    for match in CITED.finditer(text):
        path, names, bare = match.groups()
        if path:
            current = ROOT / path
            if not current.is_file():
                missing.append(path)
                continue
            wanted = [n for n in names.split("::") if n]
        else:
            wanted = [bare]
        assert current is not None, "a bare ::Name before any test file"
        source = current.read_text()
        missing += [
            f"{current.relative_to(ROOT)}::{name}"
            for name in wanted
            if not re.search(rf"^\s*(?:async )?(?:def|class) {name}\b", source, re.M)
        ]
    assert missing == []

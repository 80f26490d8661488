"""docs/formats.md: its examples are what the exporters produce today."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from auditmw.canonical import dumps, loads
from auditmw.formats import get_exporter

DOC = Path(__file__).resolve().parents[3] / "docs" / "formats.md"
_EXAMPLE = re.compile(r"<!-- example:(\w+) -->\n```json\n(.*?)\n```", re.DOTALL)
_PYTHON = re.compile(r"```python\n(.*?)\n```", re.DOTALL)


@pytest.fixture(scope="module")
def examples() -> dict[str, Any]:
    """Return the JSON examples of docs/formats.md by name."""
    return {name: json.loads(body) for name, body in _EXAMPLE.findall(DOC.read_text())}


class TestFormatsDoc:
    @pytest.mark.parametrize("fmt", ["ocsf", "ecs", "otel", "cloudevents"])
    def test_example_matches_exporter(self, examples: dict[str, Any], fmt: str) -> None:
        """Each format's example is the exporter's output for the example event."""
        assert examples[fmt] == loads(dumps(get_exporter(fmt)(examples["event"])))

    def test_python_snippets_run(
        self, examples: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The Python snippets run against the example event, read as the quick start's log."""
        (tmp_path / "audit-out").mkdir()
        (tmp_path / "audit-out" / "demo.jsonl").write_text(json.dumps(examples["event"]) + "\n")
        monkeypatch.chdir(tmp_path)
        snippets = _PYTHON.findall(DOC.read_text())
        assert len(snippets) == 3
        namespace: dict[str, Any] = {}
        for snippet in snippets:
            exec(snippet, namespace)  # noqa: S102 - our own documentation
        assert namespace["document"]["type_uid"] == 600303
        assert sorted(namespace["body"]["resourceLogs"][0]) == ["resource", "scopeLogs"]
        assert loads(namespace["payload"])["resourceLogs"][0]["scopeLogs"][0]["logRecords"]

"""Canonical JSON, UUIDv7 event ids and RFC 3339 timestamps."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from auditmw.core import canonical

SAFE_INT = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
# Keys stay in the Basic Multilingual Plane: JCS orders keys by UTF-16 code units and
# orjson by code points, which differ only for astral characters.  Event keys are ASCII.
BMP_TEXT = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]))
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | SAFE_INT | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(BMP_TEXT, children, max_size=5)
    ),
    max_leaves=30,
)


class TestCanonicalJSON:
    @settings(max_examples=300)
    @given(json_values)
    def test_equals_rfc8785(self, value: Any) -> None:
        """Sorted compact orjson equals the RFC 8785 (JCS) serialization for float-free JSON."""
        assert canonical.dumps(value) == rfc8785.dumps(value)

    def test_sorted_and_compact(self) -> None:
        """Keys are sorted and no whitespace is emitted."""
        assert canonical.dumps({"b": 1, "a": [1, {"d": None, "c": True}]}) == (
            b'{"a":[1,{"c":true,"d":null}],"b":1}'
        )

    def test_control_characters_are_escaped(self) -> None:
        """A newline in a value never splits the line."""
        assert b"\n" not in canonical.dumps({"path": "/a\nb\r\x00"})


UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class TestEventIds:
    def test_uuid7_layout(self) -> None:
        """Ids are RFC 9562 version 7, variant 10."""
        value = canonical.new_event_id()
        assert UUID_RE.match(value)
        parsed = uuid.UUID(value)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122

    def test_timestamp_prefix(self) -> None:
        """The first 48 bits are the Unix time in milliseconds."""
        # Ahead of any id made earlier in this process: ids stay monotonic, so a time
        # behind the last id (or a millisecond whose counter ran out) is moved forward.
        now = max(time.time_ns(), (canonical.last_id_ms() + 1000) * 1_000_000)
        value = canonical.new_event_id(now)
        assert int(value.replace("-", "")[:12], 16) == now // 1_000_000

    def test_monotonic_within_process(self) -> None:
        """Ids generated in sequence sort in generation order, even in one millisecond."""
        now = time.time_ns()
        ids = [canonical.new_event_id(now) for _ in range(5000)]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)


class TestTimestamps:
    @given(st.integers(min_value=0, max_value=4_102_444_800 * 10**9))
    def test_rfc3339_microseconds(self, ns: int) -> None:
        """Times are UTC with exactly six fractional digits and a Z."""
        text = canonical.format_time(ns)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text)
        parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert int(parsed.timestamp()) * 1_000_000 + parsed.microsecond == ns // 1000


class TestTimestampThreads:
    def test_concurrent_formatting_is_consistent(self) -> None:
        """Threads formatting different seconds never mix a second with another's date."""
        import threading

        errors: list[str] = []
        base = 1_700_000_000 * 10**9

        def work(offset: int) -> None:
            for i in range(2000):
                ns = base + (offset * 7919 + i) * 10**9
                expected = datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%S")
                if not canonical.format_time(ns).startswith(expected):
                    errors.append(expected)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

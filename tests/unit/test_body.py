"""Body capture shared by the shells: caps, hashes, parsing, and the per-request recorder."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditmw.event import Exchange, Headers
from auditmw.pipeline.body import (
    BodyCapture,
    BodyRecorder,
    describe_body,
    raw_headers,
    request_body,
    response_body,
)
from auditmw.pipeline.fields import clean_body
from auditmw.policy import Policy


class TestBodyCapture:
    """Copies up to the cap, counts and hashes everything."""

    def test_cap(self) -> None:
        """Bytes past the cap are counted and MACed with the key, not kept."""
        capture = BodyCapture(5, ("k1", b"body-key"))
        for chunk in (b"abc", b"", b"defg", b"hij"):
            capture.feed(chunk)
        assert capture.data == b"abcde"
        assert capture.size == 10
        mac = hmac.new(b"body-key", b"abcdefghij", hashlib.sha256).hexdigest()
        assert capture.digest == f"hmac:k1:{mac}"

    def test_no_key_no_digest(self) -> None:
        """Without a key nothing is digested: an unkeyed hash would confirm guesses."""
        capture = BodyCapture(5)
        capture.feed(b"hunter2")
        assert capture.digest is None

    def test_zero_cap(self) -> None:
        """A zero cap keeps nothing but still measures."""
        capture = BodyCapture(0)
        capture.feed(b"xyz")
        assert (capture.data, capture.size) == (b"", 3)


class TestDescribeBody:
    """The event's ``body`` object."""

    @pytest.mark.parametrize(
        ("data", "size", "ctype", "limit", "expected"),
        [
            pytest.param(b'{"a": 1}', 8, "application/json", 100,
                         {"content_type": "application/json", "size": 8, "json": {"a": 1}},
                         id="json"),
            pytest.param(b'{"a": 1}', 8, "application/vnd.api+json; charset=utf-8", 100,
                         {"content_type": "application/vnd.api+json; charset=utf-8", "size": 8,
                          "json": {"a": 1}}, id="json-suffix"),
            pytest.param(b"a=1&b=2&a=3", 11, "application/x-www-form-urlencoded", 100,
                         {"content_type": "application/x-www-form-urlencoded", "size": 11,
                          "form": {"a": ["1", "3"], "b": "2"}}, id="form"),
            pytest.param(b'{"a": 1', 7, "application/json", 100,
                         {"content_type": "application/json", "size": 7}, id="bad-json"),
            pytest.param(b'{"a"', 20, "application/json", 100,
                         {"content_type": "application/json", "size": 20, "truncated": True},
                         id="json-cut-no-hash"),
            pytest.param(b'{"a": 1}', 8, "application/json", 4,
                         {"content_type": "application/json", "size": 8, "truncated": True},
                         id="json-over-rule-cap"),
            pytest.param(b"\x89PNG", 4, "image/png", 100,
                         {"content_type": "image/png", "size": 4, "content": "omitted"},
                         id="binary-no-key"),
            pytest.param(b"hunter2", 7, "text/plain", 100,
                         {"content_type": "text/plain", "size": 7, "content": "omitted"},
                         id="text-no-key"),
            pytest.param(b"\xff\xfe", 2, "application/x-www-form-urlencoded", 100,
                         {"content_type": "application/x-www-form-urlencoded", "size": 2},
                         id="bad-form"),
        ],
    )  # fmt: skip
    def test_describe(
        self, data: bytes, size: int, ctype: str, limit: int, expected: dict[str, Any]
    ) -> None:
        """JSON and form are parsed; others omitted without a key; cut bodies marked."""
        assert describe_body(data, size, ctype, None, limit) == expected

    def test_whole_body_digest(self) -> None:
        """The keyed digest of the whole body is recorded for a body cut at the cap."""
        body = describe_body(b"ab", 10, "text/plain", "hmac:k1:" + "f" * 64, 2)
        assert body == {
            "content_type": "text/plain",
            "size": 10,
            "truncated": True,
            "hmac": "hmac:k1:" + "f" * 64,
        }

    def test_json_never_digested(self) -> None:
        """A JSON body cut at the cap gets no digest even with a key."""
        body = describe_body(b'{"a"', 20, "application/json", "hmac:k1:" + "f" * 64, 4)
        assert body == {"content_type": "application/json", "size": 20, "truncated": True}


def _exchange(method: str = "POST", route: str | None = None) -> Exchange:
    return Exchange(
        event_id="e",
        kind="http",
        method=method,
        path="/orders",
        headers=Headers(mapping={"content-type": "application/json"}),
        start_ns=0,
        start_mono=0,
    )


class TestBodyRecorder:
    """Per-request capture driven by the policy."""

    def test_request_level(self) -> None:
        """At ``request`` level only the request body is captured."""
        policy = Policy({"rules": [{"level": "request", "max_body_bytes": 4}]})
        ex = _exchange()
        recorder = BodyRecorder(policy, ex)
        recorder.request_chunk(b'{"a":')
        recorder.request_chunk(b"1}")
        recorder.response_start([(b"content-type", b"application/json")])
        recorder.response_chunk(b"{}")
        recorder.finish()
        assert (ex.request_body, ex.request_body_size) == (b'{"a"', 7)
        assert ex.response_body is None
        assert request_body(ex, 4) == {
            "content_type": "application/json",
            "size": 7,
            "truncated": True,
        }

    def test_request_response_level(self) -> None:
        """At ``request_response`` level the response body and its type are captured."""
        policy = Policy({"default_level": "request_response"})
        ex = _exchange("GET")
        located: list[bool] = []
        recorder = BodyRecorder(policy, ex, lambda: located.append(True))
        recorder.response_start([(b"Content-Type", b"application/json")])
        recorder.response_chunk(b'{"ok":')
        recorder.response_chunk(b"true}")
        recorder.finish()
        assert located == [True]
        assert ex.request_body is None
        assert response_body(ex, 100) == {
            "content_type": "application/json",
            "size": 11,
            "json": {"ok": True},
        }

    def test_metadata_level_captures_nothing(self) -> None:
        """When the matching rule is below ``request``, nothing is kept."""
        policy = Policy({"rules": [{"level": "request", "methods": ["POST"]}]})
        ex = _exchange("GET")
        recorder = BodyRecorder(policy, ex)
        recorder.request_chunk(b"data")
        recorder.response_start(None)
        recorder.response_chunk(b"data")
        recorder.finish()
        assert (ex.request_body, ex.response_body) == (None, None)


class TestWSGIHelpers:
    """Pieces the WSGI shell uses: the input wrapper and header conversion."""

    def test_raw_headers(self) -> None:
        """WSGI headers become lower-case byte pairs."""
        assert raw_headers([("Content-Type", "text/plain")]) == [(b"content-type", b"text/plain")]


class TestLongIntegers:
    """A JSON body integer beyond 64 bits keeps its exact value (orjson would round it)."""

    @given(st.integers(min_value=-(2**200), max_value=2**200))
    def test_every_integer_stored_exactly(self, number: int) -> None:
        """Any integer literal reaches the event exactly: in range as a number, else as a
        decimal string listed in ``truncated``."""
        data = b'{"n": %d, "f": 1.5, "s": "x"}' % number
        body = describe_body(data, len(data), "application/json", None, 4096)
        truncated: list[str] = []
        clean = clean_body(body, "/request/body", truncated)
        if -(2**53) < number < 2**53:
            assert clean["json"] == {"n": number, "f": 1.5, "s": "x"}
            assert truncated == []
        else:
            assert clean["json"] == {"n": str(number), "f": 1.5, "s": "x"}
            assert truncated == ["/request/body/json/n"]

    def test_floats_and_strings_of_many_digits_unchanged(self) -> None:
        """The second parse changes nothing but integers: long floats and digit strings."""
        data = (
            b'[1.2345678901234567890123, 12345678901234567890.5, "12345678901234567890123", 1e30]'
        )
        body = describe_body(data, len(data), "application/json", None, 4096)
        assert body["json"] == orjson.loads(data)

    def test_deep_nesting_keeps_the_first_parse(self) -> None:
        """Nesting the standard parser cannot follow keeps orjson's reading, never raises."""
        data = b"[" * 1000 + b"123456789012345678901234567890" + b"]" * 1000
        body = describe_body(data, len(data), "application/json", None, len(data))
        inner = body["json"]
        for _ in range(999):
            inner = inner[0]
        assert inner == [orjson.loads(b"123456789012345678901234567890")]

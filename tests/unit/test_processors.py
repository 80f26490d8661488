"""Redaction processors: detectors, actions, pointers, client IPs; secrets never survive."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditmw.canonical import dumps
from auditmw.event import Exchange, Headers
from auditmw.pipeline import Pipeline
from auditmw.policy import Policy
from auditmw.processors import (
    ClientIPRedactor,
    FieldRule,
    Pseudonymizer,
    Redactor,
    is_luhn,
    is_password_key,
)

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJlc2lnbmF0dXJl"
CARD = "4111 1111 1111 1111"
KEY = b"k" * 32


def body_event(payload: Any, *, side: str = "request", kind: str = "json") -> dict[str, Any]:
    return {side: {"body": {"content_type": "application/json", "size": 1, kind: payload}}}


def redact(payload: Any, redactor: Redactor | None = None) -> tuple[Any, list[str]]:
    event = (redactor or Redactor())(body_event(payload))
    return event["request"]["body"]["json"], event.get("redactions", [])


class TestDetectors:
    """Built-in detectors."""

    @pytest.mark.parametrize(
        ("key", "expected"),
        [
            pytest.param("password", True, id="password"),
            pytest.param("Password", True, id="case"),
            pytest.param("new_password_confirm", True, id="password-inside"),
            pytest.param("secretNote", True, id="secret-prefix"),
            pytest.param("passwordConfirm", True, id="password-prefix"),
            pytest.param("client_secret", True, id="client-secret"),
            pytest.param("X-Api-Key", True, id="api-key-dashes"),
            pytest.param("access_token", True, id="token-suffix"),
            pytest.param("max_tokens", False, id="tokens-count"),
            pytest.param("pwd", True, id="pwd"),
            pytest.param("cvv", True, id="cvv"),
            pytest.param("author", False, id="author"),
            pytest.param("quantity", False, id="plain"),
        ],
    )
    def test_password_keys(self, key: str, expected: bool) -> None:
        """Password-like key names are recognised, others are not."""
        assert is_password_key(key) is expected

    @pytest.mark.parametrize(
        ("digits", "expected"),
        [
            pytest.param("4111111111111111", True, id="visa-test"),
            pytest.param("4111111111111112", False, id="bad-check-digit"),
            pytest.param("378282246310005", True, id="amex-test"),
            pytest.param("123456789012", False, id="too-short"),
            pytest.param("41111111111111a1", False, id="not-digits"),
        ],
    )
    def test_luhn(self, digits: str, expected: bool) -> None:
        """The Luhn check accepts valid card numbers only."""
        assert is_luhn(digits) is expected

    @pytest.mark.parametrize(
        ("payload", "expected", "pointers"),
        [
            pytest.param({"password": "hunter2", "q": 1}, {"q": 1}, ["/password"], id="password"),
            pytest.param({"a": {"b": [{"Secret": "x"}]}}, {"a": {"b": [{}]}}, ["/a/b/0/Secret"],
                         id="nested"),
            pytest.param({"note": JWT}, {}, ["/note"], id="jwt"),
            pytest.param({"note": f"see Bearer {'a' * 20}"}, {}, ["/note"], id="bearer"),
            pytest.param({"pan": CARD}, {}, ["/pan"], id="card-spaced"),
            pytest.param({"pan": 4111111111111111}, {}, ["/pan"], id="card-int"),
            pytest.param({"n": 4111111111111112}, {"n": 4111111111111112}, [], id="not-card"),
            pytest.param([JWT, "ok"], ["[REDACTED]", "ok"], ["/0"], id="list-item"),
            pytest.param({"a/b": {"token": "t"}}, {"a/b": {}}, ["/a~1b/token"], id="escaped"),
            pytest.param({"max_tokens": 5}, {"max_tokens": 5}, [], id="innocent"),
        ],
    )  # fmt: skip
    def test_body(self, payload: Any, expected: Any, pointers: list[str]) -> None:
        """Secrets are dropped and listed as JSON Pointers into the event."""
        result, redactions = redact(payload)
        assert result == expected
        assert redactions == [f"/request/body/json{p}" for p in pointers]

    def test_detectors_can_be_chosen(self) -> None:
        """Only the configured detectors run."""
        result, _ = redact({"password": "x", "note": JWT}, Redactor(detectors=["jwt"]))
        assert result == {"password": "x"}

    def test_headers_and_form(self) -> None:
        """Allow-listed header values and form bodies are scanned too."""
        event = {
            "request": {
                "headers": {"x-debug": f"Bearer {'z' * 30}", "accept": "text/html"},
                "body": {"form": {"user": "ada", "password": "pw"}},
            },
            "response": {"body": {"json": {"id_token": JWT}}},
        }
        out = Redactor()(event)
        assert out["request"]["headers"] == {"x-debug": "[REDACTED]", "accept": "text/html"}
        assert out["request"]["body"]["form"] == {"user": "ada"}
        assert out["response"]["body"]["json"] == {}
        assert out["redactions"] == [
            "/request/headers/x-debug",
            "/request/body/form/password",
            "/response/body/json/id_token",
        ]


class TestActions:
    """drop, mask, hmac; fields by name and by pointer."""

    @pytest.mark.parametrize(
        ("rule", "value", "expected"),
        [
            pytest.param(FieldRule("mask", 4), "DE89370400440532013000", "****3000", id="mask"),
            pytest.param(FieldRule("mask", 4), "short", "****", id="mask-short"),
            pytest.param(FieldRule("mask", 0), "abcdefgh", "****", id="mask-all"),
            pytest.param(FieldRule("mask", 2), 123456, "****56", id="mask-int"),
        ],
    )
    def test_mask(self, rule: FieldRule, value: Any, expected: str) -> None:
        """Masking keeps only the last characters, and nothing of short values."""
        result, _ = redact({"iban": value}, Redactor([("iban", rule)]))
        assert result == {"iban": expected}

    def test_hmac(self) -> None:
        """A keyed pseudonym is stable, names its key and differs per key."""
        rule = FieldRule("hmac", hasher=Pseudonymizer("k1", KEY))
        a, _ = redact({"email": "ada@example.com"}, Redactor([("email", rule)]))
        b, _ = redact({"email": "ada@example.com"}, Redactor([("email", rule)]))
        other = FieldRule("hmac", hasher=Pseudonymizer("k2", b"o" * 32))
        c, _ = redact({"email": "ada@example.com"}, Redactor([("email", other)]))
        assert a == b
        assert a["email"].startswith("hmac:k1:")
        assert len(a["email"]) == len("hmac:k1:") + 16
        assert c["email"].startswith("hmac:k2:")
        assert c["email"][-16:] != a["email"][-16:]

    def test_hmac_needs_key(self) -> None:
        """The hmac action without a key is refused; short keys too."""
        with pytest.raises(ValueError, match="needs a key"):
            FieldRule("hmac")
        with pytest.raises(ValueError, match="16 bytes"):
            Pseudonymizer("k", b"short")
        assert "kkkk" not in repr(Pseudonymizer("k", KEY))

    def test_pointer_and_name(self) -> None:
        """A pointer matches one place; a name matches at any depth, case-insensitively."""
        redactor = Redactor([("/customer/dob", FieldRule()), ("SSN", FieldRule())])
        result, redactions = redact(
            {"dob": "1", "customer": {"dob": "2", "ssn": "3"}, "kids": [{"ssn": "4"}]}, redactor
        )
        assert result == {"dob": "1", "customer": {}, "kids": [{}]}
        assert redactions == [
            "/request/body/json/customer/dob",
            "/request/body/json/customer/ssn",
            "/request/body/json/kids/0/ssn",
        ]

    def test_pointer_to_list_item_and_whole_object(self) -> None:
        """Pointers reach list items; a redacted object is replaced as a whole."""
        redactor = Redactor([("/cards/1", FieldRule()), ("address", FieldRule("mask", 0))])
        result, _ = redact({"cards": ["a", "b"], "address": {"street": "x"}}, redactor)
        assert result == {"cards": ["a", "[REDACTED]"], "address": "****"}

    def test_query(self) -> None:
        """Extra query parameters are replaced and listed."""
        event = Redactor(query=["Signature"])({"request": {"query": "a=1&signature=abc&b="}})
        assert event["request"]["query"] == "a=1&signature=[REDACTED]&b="
        assert event["redactions"] == ["/request/query/signature"]

    def test_extra_secret_headers(self) -> None:
        """Headers named in ``redaction.headers`` are removed even when allow-listed."""
        event = {"request": {"headers": {"x-session": "abc"}}, "response": {}}
        out = Redactor(headers=["X-Session"])(event)
        assert "headers" not in out["request"]
        assert out["redactions"] == ["/request/headers/x-session"]

    def test_untouched_event(self) -> None:
        """An event with nothing to redact gains no ``redactions`` key."""
        event = {"request": {"method": "GET"}, "response": {"status_code": 200}}
        assert Redactor(query=["x"])(copy.deepcopy(event)) == event


class TestClientIP:
    """Client IP treatment."""

    @pytest.mark.parametrize(
        ("ip", "expected"),
        [
            pytest.param("203.0.113.77", "203.0.113.0", id="ipv4"),
            pytest.param("2001:db8:abcd:12::1", "2001:db8:abcd::", id="ipv6"),
            pytest.param("not-an-ip", "[REDACTED]", id="garbage"),
        ],
    )
    def test_truncate(self, ip: str, expected: str) -> None:
        """IPv4 to /24, IPv6 to /48; forwarded_for (raw addresses) is removed."""
        event = {"source": {"ip": ip, "port": 1, "forwarded_for": "203.0.113.77, 10.0.0.1"}}
        out = ClientIPRedactor("truncate")(event)
        assert out["source"] == {"ip": expected, "port": 1}
        assert out["redactions"] == ["/source/ip", "/source/forwarded_for"]

    def test_hmac(self) -> None:
        """IPs become keyed pseudonyms."""
        out = ClientIPRedactor("hmac", Pseudonymizer("k", KEY))({"source": {"ip": "1.2.3.4"}})
        assert out["source"]["ip"].startswith("hmac:k:")

    def test_unknown_ip_and_lifecycle(self) -> None:
        """Nothing to do: no redactions recorded."""
        assert ClientIPRedactor("truncate")({"source": {"ip": "unknown"}}) == {
            "source": {"ip": "unknown"}
        }
        assert ClientIPRedactor("truncate")({"kind": "audit.started"}) == {"kind": "audit.started"}

    def test_bad_mode(self) -> None:
        """hmac without a key is refused."""
        with pytest.raises(ValueError, match="client_ip"):
            ClientIPRedactor("hmac")


# -- property: a planted secret never survives -----------------------------------------

SECRET = "s3cr3t-" + "Q" * 24
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
_plants = st.sampled_from(
    [
        ("password", SECRET),
        ("client_secret", SECRET),
        ("Api-Key", SECRET),
        ("note", f"eyJ{SECRET}.eyJ{SECRET}.sig"),
        ("note", f"Bearer {SECRET}"),
        ("pan", "4111-1111-1111-1111"),
    ]
)


def _plant(tree: Any, key: str, value: str, path: list[int]) -> Any:
    """Put ``{key: value}`` somewhere in ``tree`` chosen by ``path``."""
    planted = {key: value} if key != "note" else value
    node = tree
    for step in path:
        if isinstance(node, dict) and node:
            node = node[sorted(node)[step % len(node)]]
        elif isinstance(node, list) and node:
            node = node[step % len(node)]
        else:
            break
    if isinstance(node, dict):
        node[key] = value
        return tree
    if isinstance(node, list):
        node.append(planted)
        return tree
    return [tree, planted]


def _exchange(body: bytes) -> Exchange:
    return Exchange(
        event_id="e",
        kind="http",
        method="POST",
        path="/orders",
        headers=Headers(mapping={"content-type": "application/json"}),
        start_ns=0,
        start_mono=0,
        status=201,
        request_body=body,
        request_body_size=len(body),
        response_body=body,
        response_body_size=len(body),
        response_headers=[(b"content-type", b"application/json")],
    )


class TestNoSecretSurvives:
    """Whatever the level and the position, a planted secret is never serialized."""

    @settings(max_examples=150, deadline=None)
    @given(
        tree=_json,
        plant=_plants,
        path=st.lists(st.integers(0, 7), max_size=5),
        level=st.sampled_from(["metadata", "request", "request_response"]),
        action=st.sampled_from(["drop", "mask"]),
    )
    def test_planted_secret(
        self, tree: Any, plant: tuple[str, str], path: list[int], level: str, action: str
    ) -> None:
        """The secret string appears nowhere in the canonical event bytes."""
        from auditmw.config import AuditConfig

        key, value = plant
        document = {"default_level": level, "redaction": {"action": action}}
        body = dumps(_plant(tree, key, value, path))
        pipeline = Pipeline(AuditConfig(service="s", policy=Policy(document)))
        event = pipeline.process(_exchange(body))
        assert event is not None
        data = dumps(event)
        assert SECRET.encode() not in data
        assert b"4111-1111-1111-1111" not in data
        if level != "metadata":
            assert event["redactions"]

"""Event processors: redaction and pseudonymisation, run before serialization and hashing.

Trust: redaction here is a safety net over what the pipeline already never records
(``Authorization``, ``Cookie``, ``Set-Cookie``, API-key headers, secret query
parameters).  The detectors find JWTs, bearer credentials, Luhn-valid card numbers
and values under password-like keys; they cannot recognise every secret (a
password under an innocent key name, a token in a free-text field).  Do not rely
on them to make it safe to capture bodies of endpoints that carry credentials:
keep such routes at ``metadata`` level.  ``hmac`` pseudonyms are keyed, so they
resist dictionary attacks only while the key stays secret.

Processors follow structlog's style: each is a callable ``(event) -> event`` that
chooses its fast path once, at construction.  Every value removed or replaced is
listed in the event's ``redactions`` as a JSON Pointer.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from auditmw.core.types import Event

__all__ = [
    "DETECTORS",
    "REDACTED",
    "SECRET_HEADERS",
    "SECRET_PARAMS",
    "ClientIPRedactor",
    "FieldRule",
    "Pseudonymizer",
    "Redactor",
    "is_luhn",
    "is_password_key",
]

Action = Literal["drop", "mask", "hmac"]
REDACTED: Final = "[REDACTED]"
#: Headers never recorded, whatever the allow-list says.
SECRET_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
#: Query parameters whose values are always replaced by ``[REDACTED]``.
SECRET_PARAMS: Final = frozenset(
    {
        "access_token", "api-key", "api_key", "apikey", "auth", "authorization", "client_secret",
        "code", "id_token", "jwt", "key", "passwd", "password", "pwd", "refresh_token", "secret",
        "session", "sessionid", "sig", "signature", "token",
    }
)  # fmt: skip
DETECTORS: Final = ("jwt", "bearer", "card", "password_keys")

_JWT_RE: Final = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER_RE: Final = re.compile(r"\b(?i:bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}")
_CARD_RE: Final = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
# Words that mark a secret anywhere in a key, and words that do so only at its end
# ("access_token" is a secret, "max_tokens" is not).
_SECRET_PARTS: Final = (
    "password", "passwd", "passphrase", "secret", "apikey", "privatekey", "credential",
)  # fmt: skip
_SECRET_SUFFIXES: Final = ("token", "accesskey", "signingkey", "authorization")
_SECRET_EXACT: Final = frozenset({"pwd", "pass", "pin", "cvv", "cvc", "otp", "auth", "cookie"})
_DROP: Final = object()


def is_password_key(key: str) -> bool:
    """Whether a field named ``key`` holds a secret (``password``, ``client_secret``, …).

    Case, ``-`` and ``_`` are ignored.  ``password``, ``secret``, ``api_key`` and the
    like match anywhere in the key (``new_password_confirm``); ``token`` only at
    its end (``access_token``, but not ``max_tokens``).

    .. versionadded:: 0.1.0
    """
    norm = key.lower().replace("_", "").replace("-", "")
    if norm in _SECRET_EXACT or norm.endswith(_SECRET_SUFFIXES):
        return True
    return any(part in norm for part in _SECRET_PARTS)


def is_luhn(digits: str) -> bool:
    """Whether ``digits`` (13-19 digits) passes the Luhn check of card numbers.

    .. versionadded:: 0.1.0
    """
    if not 13 <= len(digits) <= 19 or not digits.isdigit():
        return False
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = ord(char) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


class Pseudonymizer:
    """Keyed pseudonyms: ``hmac:<key id>:<16 hex digits of HMAC-SHA256>``.

    Args:
        key_id: a public name of the key, recorded in each pseudonym.
        key: the secret key (at least 16 bytes).

    Raises:
        ValueError: the key is shorter than 16 bytes.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_key", "key_id")

    def __init__(self, key_id: str, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the HMAC redaction key must be at least 16 bytes long")
        self.key_id = key_id
        self._key = key

    def __call__(self, value: str) -> str:
        digest = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return f"hmac:{self.key_id}:{digest.hexdigest()[:16]}"

    def __repr__(self) -> str:
        return f"Pseudonymizer(key_id={self.key_id!r})"


class FieldRule:
    """How one redacted field is replaced: ``drop``, ``mask`` (keep last ``keep``) or ``hmac``.

    Args:
        action: the action.
        keep: characters kept at the end by ``mask``.
        hasher: the keyed pseudonymizer, required by ``hmac``.

    Raises:
        ValueError: ``hmac`` without a pseudonymizer.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("action", "hasher", "keep")

    def __init__(self, action: Action = "drop", keep: int = 4, hasher: Pseudonymizer | None = None):
        if action == "hmac" and hasher is None:
            raise ValueError("the hmac redaction action needs a key (redaction.hmac_key_id)")
        self.action = action
        self.keep = keep
        self.hasher = hasher

    def apply(self, value: Any) -> Any:
        """Return the replacement of ``value``, or the drop marker."""
        if self.action == "drop":
            return _DROP
        text = value if isinstance(value, str) else _text(value)
        if self.action == "hmac":
            assert self.hasher is not None
            return self.hasher(text)
        # Short values are masked entirely: keeping 4 of 6 characters reveals too much.
        if self.keep and len(text) >= 3 * self.keep:
            return "****" + text[-self.keep :]
        return "****"


def _digit_count(text: str) -> int:
    raw = text.encode("utf-8", "surrogatepass")
    return len(raw) - len(raw.translate(None, b"0123456789"))


def _text(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode("utf-8")


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


class Redactor:
    """Redacts bodies, allow-listed headers and extra query parameters of an event.

    Args:
        fields: field names (any depth, case-insensitive) or JSON Pointers inside a
            body (``/card/number``), each with its :class:`FieldRule`.
        detectors: built-in detectors to run: ``jwt``, ``bearer``, ``card``,
            ``password_keys``.
        default: the rule for detector hits.
        query: extra query parameter names whose values are replaced.
        headers: header names removed from recorded request and response headers.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        fields: Iterable[tuple[str, FieldRule]] = (),
        *,
        detectors: Iterable[str] = DETECTORS,
        default: FieldRule | None = None,
        query: Iterable[str] = (),
        headers: Iterable[str] = (),
    ) -> None:
        self.default = default or FieldRule()
        self.names: dict[str, FieldRule] = {}
        self.pointers: dict[str, FieldRule] = {}
        for name, rule in fields:
            if name.startswith("/"):
                self.pointers[name] = rule
            else:
                self.names[name.lower()] = rule
        found = set(detectors)
        self.password_keys = "password_keys" in found
        self.jwt = "jwt" in found
        self.bearer = "bearer" in found
        self.cards = "card" in found
        self.query = frozenset(q.lower() for q in query)
        self.headers = frozenset(h.lower() for h in headers)

    def __call__(self, event: Event) -> Event:
        redactions: list[str] = event.get("redactions") or []
        for side in ("request", "response"):
            part = event.get(side)
            if not part:
                continue
            headers = part.get("headers")
            if headers:
                self._strings(headers, f"/{side}/headers", redactions)
                if not headers:
                    del part["headers"]
            body = part.get("body")
            if body:
                for kind in ("json", "form"):
                    if kind in body:
                        base = f"/{side}/body/{kind}"
                        body[kind] = self._value(body[kind], "", base, redactions)
                        if body[kind] is _DROP:
                            body[kind] = REDACTED
        if self.query:
            self._query(event.get("request"), redactions)
        if redactions:
            event["redactions"] = redactions
        return event

    def _strings(self, mapping: dict[str, Any], base: str, redactions: list[str]) -> None:
        for key, value in list(mapping.items()):
            if key in self.headers:
                del mapping[key]
                redactions.append(f"{base}/{_escape(key)}")
            elif isinstance(value, str) and self._is_secret_text(value):
                mapping[key] = REDACTED
                redactions.append(f"{base}/{_escape(key)}")

    def _rule_for(self, key: str, pointer: str) -> FieldRule | None:
        rule = self.pointers.get(pointer) or self.names.get(key.lower())
        if rule is None and self.password_keys and is_password_key(key):
            return self.default
        return rule

    def _value(self, value: Any, pointer: str, base: str, redactions: list[str]) -> Any:
        if isinstance(value, dict):
            for key in list(value):
                child = f"{pointer}/{_escape(str(key))}"
                rule = self._rule_for(str(key), child)
                new = (
                    rule.apply(value[key])
                    if rule is not None
                    else self._value(value[key], child, base, redactions)
                )
                if rule is not None:
                    redactions.append(base + child)
                if new is _DROP:
                    del value[key]
                else:
                    value[key] = new
            return value
        if isinstance(value, list):
            for i, item in enumerate(value):
                child = f"{pointer}/{i}"
                rule = self.pointers.get(child)
                if rule is not None:
                    redactions.append(base + child)
                    new = rule.apply(item)
                else:
                    new = self._value(item, child, base, redactions)
                value[i] = REDACTED if new is _DROP else new
            return value
        if self._is_secret_scalar(value):
            redactions.append(base + pointer)
            return self.default.apply(value)
        return value

    def _is_secret_scalar(self, value: Any) -> bool:
        if isinstance(value, str):
            return self._is_secret_text(value)
        if self.cards and isinstance(value, int) and not isinstance(value, bool):
            return is_luhn(str(value))
        return False

    def _is_secret_text(self, text: str) -> bool:
        # Cheap substring and digit-count checks first: the regexes cost microseconds
        # per value, and most values (user agents, ids, prose) fail the pre-checks.
        if self.jwt and "eyJ" in text and _JWT_RE.search(text):
            return True
        if self.bearer:
            lowered = text.lower()
            if ("bearer" in lowered or "basic" in lowered or "token" in lowered) and (
                _BEARER_RE.search(text)
            ):
                return True
        if self.cards and len(text) >= 13 and _digit_count(text) >= 13:
            for match in _CARD_RE.finditer(text):
                if is_luhn(match.group().replace(" ", "").replace("-", "")):
                    return True
        return False

    def _query(self, request: dict[str, Any] | None, redactions: list[str]) -> None:
        query = request.get("query") if request else None
        if not query or request is None:
            return
        from urllib.parse import unquote_plus

        parts = query.split("&")
        for i, part in enumerate(parts):
            name, sep, value = part.partition("=")
            key = unquote_plus(name).lower()
            if value and value != REDACTED and key in self.query:
                parts[i] = f"{name}{sep}{REDACTED}"
                redactions.append(f"/request/query/{_escape(key)}")
        request["query"] = "&".join(parts)


class ClientIPRedactor:
    """Truncates (``/24`` IPv4, ``/48`` IPv6) or pseudonymises ``source.ip``.

    ``source.forwarded_for`` holds the raw addresses of the chain, so it is removed.

    Args:
        mode: ``"truncate"`` or ``"hmac"``.
        hasher: the pseudonymizer, required by ``"hmac"``.

    Raises:
        ValueError: ``mode`` is unknown, or ``"hmac"`` without a pseudonymizer.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self, mode: Literal["truncate", "hmac"], hasher: Pseudonymizer | None = None
    ) -> None:
        self._transform: Callable[[str], str]
        if mode == "truncate":
            self._transform = _truncate_ip
        elif mode == "hmac" and hasher is not None:
            self._transform = hasher
        else:
            raise ValueError(f"client_ip {mode!r} needs 'truncate', or 'hmac' with a key")
        self.mode = mode

    def __call__(self, event: Event) -> Event:
        source = event.get("source")
        if not source:
            return event
        redactions: list[str] = event.setdefault("redactions", [])
        ip = source.get("ip")
        if ip and ip != "unknown":
            source["ip"] = self._transform(ip)
            redactions.append("/source/ip")
        if source.pop("forwarded_for", None) is not None:
            redactions.append("/source/forwarded_for")
        if not redactions:
            del event["redactions"]
        return event


def _truncate_ip(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return REDACTED
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)

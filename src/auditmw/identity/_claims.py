"""Mapping verified JWT claims to an :class:`~auditmw.event.Actor`.

Claims come from a verified token, but they are still capped and cleaned: an identity
provider may put anything in a custom claim, and the event must stay one sane line.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from auditmw.core.event import Actor, AuthInfo

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = ["ClaimsMapping", "clean_text"]

_MAX_TEXT: Final = 256
_MAX_ITEMS: Final = 64
_MFA_METHODS: Final = ("mfa", "otp", "hwk", "sc", "sms", "tel", "fpt", "face", "iris", "retina")
Paths = tuple[tuple[str, ...], ...]


def clean_text(value: object, limit: int = _MAX_TEXT) -> str | None:
    """Return ``value`` as printable text capped at ``limit`` characters, or ``None``.

    Only strings and integers are accepted; anything else (lists, objects) is ``None``.
    """
    if type(value) is str:  # the common case first: exact type checks are cheapest
        text = value[:limit]
    elif type(value) is int or isinstance(value, str):
        text = str(value)[:limit]
    else:
        return None
    if not text.isprintable():
        text = "".join(char for char in text if char.isprintable())
    return text or None


def _normalize(paths: str | Sequence[str]) -> tuple[str, ...]:
    return (paths,) if isinstance(paths, str) else tuple(paths)


@dataclass(frozen=True, slots=True)
class ClaimsMapping:
    """Where each actor field is read from in the token's claims (dotted paths).

    Every field lists candidate paths; the first present wins, except ``roles``, which
    merges all of them (Keycloak puts realm roles and groups in different claims).

    Args:
        id: the subject.
        name: display name.
        email: e-mail address.
        roles: role lists (strings are split on spaces).
        scopes: OAuth scopes (``scope`` is space-separated; ``scp`` a list or string).
        tenant_id: the tenant claim, e.g. ``("tid",)`` for Entra ID; none by default.
        client_id: the OAuth client.
        session_id: the token or session id.
        amr: authentication methods (RFC 8176); sets ``mfa`` in the actor's extra fields.
        act: RFC 8693 actor claim; its ``sub`` goes to ``on_behalf_of`` in the extra fields.
        mfa_methods: ``amr`` values that count as multi-factor.
        is_service: ``predicate(claims) -> bool`` deciding that the token belongs to a
            service; by default, a token with no subject or whose subject equals its client id
            (the OAuth client-credentials grant).

    .. versionadded:: 0.1.0
    """

    id: str | Sequence[str] = ("sub",)
    name: str | Sequence[str] = ("name", "preferred_username")
    email: str | Sequence[str] = ("email",)
    roles: str | Sequence[str] = ("roles", "groups", "realm_access.roles")
    scopes: str | Sequence[str] = ("scope", "scp")
    tenant_id: str | Sequence[str] = ()
    client_id: str | Sequence[str] = ("azp", "client_id")
    session_id: str | Sequence[str] = ("jti",)
    amr: str | Sequence[str] = ("amr",)
    act: str | Sequence[str] = ("act",)
    mfa_methods: Sequence[str] = _MFA_METHODS
    is_service: Callable[[Mapping[str, Any]], bool] | None = field(default=None, compare=False)

    def compile(self) -> Callable[[Mapping[str, Any], AuthInfo], Actor]:
        """Return a fast function ``(claims, auth) -> Actor`` for this mapping."""
        return _Compiled(self).build


def _paths(value: str | Sequence[str]) -> Paths:
    return tuple(tuple(path.split(".")) for path in _normalize(value))


def _lookup(claims: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    # Claims are JSON objects, i.e. dicts: an exact dict check avoids the ABC machinery.
    value: Any = claims
    for part in path:
        if type(value) is not dict:
            return None
        value = value.get(part)
    return value


def _first(claims: Mapping[str, Any], paths: Paths) -> Any:
    for path in paths:
        value = _lookup(claims, path)
        if value is not None:
            return value
    return None


def _strings(value: Any) -> list[str]:
    items = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
    out = []
    for item in items[:_MAX_ITEMS]:
        text = clean_text(item)
        if text is not None:
            out.append(text)
    return out


class _Compiled:
    __slots__ = (
        "act",
        "amr",
        "client_id",
        "email",
        "id",
        "mfa",
        "name",
        "roles",
        "scopes",
        "service",
        "session_id",
        "tenant_id",
    )  # fmt: skip

    def __init__(self, mapping: ClaimsMapping) -> None:
        self.id = _paths(mapping.id)
        self.name = _paths(mapping.name)
        self.email = _paths(mapping.email)
        self.roles = _paths(mapping.roles)
        self.scopes = _paths(mapping.scopes)
        self.tenant_id = _paths(mapping.tenant_id)
        self.client_id = _paths(mapping.client_id)
        self.session_id = _paths(mapping.session_id)
        self.amr = _paths(mapping.amr)
        self.act = _paths(mapping.act)
        self.mfa = frozenset(mapping.mfa_methods)
        self.service = mapping.is_service or self._default_is_service

    def _default_is_service(self, claims: Mapping[str, Any]) -> bool:
        subject = _first(claims, self.id)
        return subject is None or subject == _first(claims, self.client_id)

    def build(self, claims: Mapping[str, Any], auth: AuthInfo) -> Actor:
        subject = clean_text(_first(claims, self.id))
        client_id = clean_text(_first(claims, self.client_id))
        roles = dict.fromkeys(r for path in self.roles for r in _strings(_lookup(claims, path)))
        return Actor(
            id=subject or client_id or "unknown",
            type="service" if self.service(claims) else "user",
            name=clean_text(_first(claims, self.name)),
            email=clean_text(_first(claims, self.email)),
            roles=tuple(roles)[:_MAX_ITEMS],
            scopes=tuple(_strings(_first(claims, self.scopes))),
            tenant_id=clean_text(_first(claims, self.tenant_id)),
            client_id=client_id,
            session_id=clean_text(_first(claims, self.session_id)),
            auth=auth,
            extra=self._extra(claims),
        )

    def _extra(self, claims: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
        extra: list[tuple[str, Any]] = []
        amr = _first(claims, self.amr)
        if amr is not None:
            extra.append(("mfa", any(method in self.mfa for method in _strings(amr))))
        act = _first(claims, self.act)
        delegate = clean_text(act.get("sub")) if type(act) is dict else None
        if delegate is not None:
            extra.append(("on_behalf_of", delegate))
        return tuple(extra)

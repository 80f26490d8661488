"""Static verification keys, and the checks that keep algorithms and keys consistent.

Trust: these checks are what make the HS/RS key-confusion attack impossible by
construction: an allow-list never mixes HS* with asymmetric algorithms, a secret is only
used for HS*, and a public key only for the algorithm family it belongs to.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import get_default_algorithms

from auditmw.exceptions import ConfigurationError

__all__ = [
    "GENERATE_HINT",
    "InsecureKeyWarning",
    "KeyEntry",
    "StaticKeys",
    "algorithm_family",
    "check_algorithms",
    "check_keys",
    "check_limits",
    "key_family",
]

_KNOWN_ALGORITHMS: Final = frozenset(get_default_algorithms()) - {"none"}
_MIN_RSA_BITS: Final = 2048
_FAMILIES: Final = {"HS": "HS", "RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
#: One verification key: the key object, its family, and the ``alg`` its JWK pins (if any).
KeyEntry = tuple[Any, str, str | None]


def algorithm_family(alg: str) -> str | None:
    """Return the key family (``HS``, ``RSA``, ``EC``, ``OKP``) that algorithm ``alg`` needs.

    Args:
        alg: a JWS algorithm name such as ``"PS256"``.

    .. versionadded:: 0.1.0
    """
    return _FAMILIES.get(alg[:2]) if alg != "none" else None


def key_family(key: Any) -> str | None:
    """Return the family of a loaded key object, or ``None`` when it is not a usable public key.

    Args:
        key: an HMAC secret (bytes) or a ``cryptography`` public key; RSA keys shorter
            than 2048 bits are not usable.

    .. versionadded:: 0.1.0
    """
    if isinstance(key, bytes):
        return "HS"
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA" if key.key_size >= _MIN_RSA_BITS else None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "OKP"
    return None


class StaticKeys:
    """A fixed set of verification keys: one HMAC secret, or PEM public keys.

    Args:
        secret: the shared secret for HS* algorithms.
        public_keys: PEM public keys (RSA ≥ 2048 bits, EC, Ed25519/Ed448), either a list
            (tried in order) or a mapping from ``kid`` to PEM.

    Raises:
        ConfigurationError: a PEM cannot be loaded, or is not a usable public key.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        secret: str | bytes | None = None,
        public_keys: Sequence[str | bytes] | Mapping[str, str | bytes] | None = None,
    ) -> None:
        self.secret = secret.encode() if isinstance(secret, str) else secret
        by_kid: dict[str | None, list[KeyEntry]] = {}
        if isinstance(public_keys, Mapping):
            for kid, pem in public_keys.items():
                by_kid.setdefault(kid, []).append(_load_pem(pem))
        else:
            for pem in public_keys or ():
                by_kid.setdefault(None, []).append(_load_pem(pem))
        self._by_kid = by_kid
        self.families = frozenset(entry[1] for entries in by_kid.values() for entry in entries)

    def candidates(self, kid: str | None) -> list[KeyEntry]:
        """Return the keys that may have signed a token with ``kid`` (any family)."""
        if self.secret:
            return [(self.secret, "HS", None)]
        entries = self._by_kid.get(kid) if kid is not None else None
        if entries is None:
            # No kid (or a kid we never named): try the keys registered without one.
            entries = self._by_kid.get(None, [])
        return list(entries)

    def __repr__(self) -> str:
        secret = "<hidden>" if self.secret else None
        return f"StaticKeys(secret={secret}, families={sorted(self.families)})"


def _load_pem(pem: str | bytes) -> KeyEntry:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            "public_keys: could not load a PEM public key "
            "(expected '-----BEGIN PUBLIC KEY-----'; private keys and certificates are refused)",
            setting="public_keys",
        ) from exc
    family = key_family(key)
    if family is None:
        raise ConfigurationError(
            "public_keys: unsupported public key; "
            "use RSA (2048 bits or more), EC, or Ed25519/Ed448",
            setting="public_keys",
        )
    return (key, family, None)


def check_algorithms(algorithms: Sequence[str]) -> frozenset[str]:
    if isinstance(algorithms, str) or not algorithms:
        raise ConfigurationError(
            "algorithms must be a non-empty list such as ['RS256']", setting="algorithms"
        )
    names = frozenset(algorithms)
    if any(name.lower() == "none" for name in names):
        raise ConfigurationError("algorithms must not contain 'none'", setting="algorithms")
    unknown = names - _KNOWN_ALGORITHMS
    if unknown:
        raise ConfigurationError(
            f"algorithms: unsupported {sorted(unknown)}; choose from {sorted(_KNOWN_ALGORITHMS)}",
            setting="algorithms",
        )
    if len({algorithm_family(n) == "HS" for n in names}) > 1:
        raise ConfigurationError(
            "algorithms must not mix HS* with asymmetric algorithms (key confusion); "
            "use one JWTResolver per key type",
            setting="algorithms",
        )
    return names


def check_limits(**limits: int) -> None:
    for name, value in limits.items():
        if value < 0 or (value == 0 and name in ("max_token_bytes", "cache_ttl")):
            raise ConfigurationError(f"{name} must be a positive number, got {value}", setting=name)


class InsecureKeyWarning(UserWarning):
    """An HS* secret shorter than RFC 7518 §3.2 asks (the hash size) was accepted.

    Emitted once, when the resolver is built (pyjwt's ``InsecureKeyLengthWarning``
    convention); filter it with ``warnings.filterwarnings("ignore",
    category=InsecureKeyWarning)``.  The weakness is also stated in ``audit.started``
    and failed by ``auditmw audit-ready``.  Pass ``min_secret_bytes`` to refuse short
    secrets instead.

    .. versionadded:: 0.2.0
    """


GENERATE_HINT: Final = "python -c 'import secrets; print(secrets.token_urlsafe(64))'"


def check_keys(
    algorithms: frozenset[str],
    static: StaticKeys,
    store: object | None,
    min_secret_bytes: int | None = None,
) -> int | None:
    """Check that keys fit the algorithms; return the recommended size of a short secret.

    ``store`` is the JWKS key store (:class:`~auditmw.identity.keys.JWKSKeyStore`), if
    any; only its presence matters here.

    Returns:
        ``None``, or the byte size RFC 7518 §3.2 asks for when the HS* secret is shorter
        (accepted, unless ``min_secret_bytes`` refuses it).

    Raises:
        ConfigurationError: keys and algorithms do not fit, or the secret is shorter
            than ``min_secret_bytes``.
    """
    families = {algorithm_family(alg) for alg in algorithms}
    if "HS" in families:
        if store is not None or static.families:
            raise ConfigurationError(
                "HS* algorithms take a secret, not public_keys or jwks", setting="secret"
            )
        if not static.secret:
            raise ConfigurationError("HS* algorithms need a secret", setting="secret")
        size = len(static.secret)
        if min_secret_bytes is not None and size < min_secret_bytes:
            raise ConfigurationError(
                f"secret is {size} bytes, below min_secret_bytes={min_secret_bytes}; use a "
                f"longer secret (generate one with: {GENERATE_HINT}) or lower min_secret_bytes",
                setting="secret",
            )
        need = max(int(alg[2:]) // 8 for alg in algorithms)
        return need if size < need else None
    if static.secret is not None:
        raise ConfigurationError("secret is only for HS* algorithms", setting="secret")
    if store is None and not static.families:
        raise ConfigurationError("asymmetric algorithms need public_keys or jwks", setting="jwks")
    if static.families - families:
        raise ConfigurationError(
            f"public_keys include {sorted(static.families - families)} keys that no "
            "configured algorithm uses",
            setting="public_keys",
        )
    return None

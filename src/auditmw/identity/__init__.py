"""Identity resolvers: who made a request.

Resolvers run in order (see :func:`resolve_actor`); the first that recognises a
credential wins.  Each is a pure function of the request plus preloaded key material.

May import: the core (the event model) and ``exceptions``; never configuration,
delivery or the shells.  HTTP for JWKS is imported lazily (``auditmw[jwks]``).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from auditmw.identity._claims import ClaimsMapping
from auditmw.identity._keysets import InsecureKeyWarning
from auditmw.identity.apikey import APIKeyEntry, APIKeyRegistry, APIKeyResolver, hash_key
from auditmw.identity.base import FrameworkUserResolver, HookResolver, resolve_actor
from auditmw.identity.jwt import JWTResolver
from auditmw.identity.keys import JWKSKeyStore, KeyStoreStatus, StaticKeys

__all__ = [
    "APIKeyEntry",
    "APIKeyRegistry",
    "APIKeyResolver",
    "ClaimsMapping",
    "FrameworkUserResolver",
    "HookResolver",
    "InsecureKeyWarning",
    "JWKSKeyStore",
    "JWTResolver",
    "KeyStoreStatus",
    "StaticKeys",
    "hash_key",
    "resolve_actor",
]

"""Per-request identity cost: cached JWT resolution against uncached pyjwt verification.

Run: ``python benchmarks/bench_identity.py`` (about 10-20 s).  Cases are measured in
interleaved rounds and the median per-call time of each is reported, with ratios taken
within this one run.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from auditmw.event import Exchange, Headers
from auditmw.identity import APIKeyRegistry, APIKeyResolver, JWTResolver, hash_key

if TYPE_CHECKING:
    from collections.abc import Callable

ROUNDS = 15
SECRET = b"s" * 64
CLAIMS = {
    "sub": "user-42",
    "iss": "https://idp.example.com/",
    "aud": "api",
    "exp": int(time.time()) + 3600,
    "iat": int(time.time()),
    "name": "Ada",
    "email": "ada@example.com",
    "roles": ["admin", "ops"],
    "scope": "orders:read orders:write",
    "azp": "web",
    "jti": "jti-1",
}


def exchange(name: bytes, value: bytes) -> Exchange:
    """A request carrying one credential header (parsed once, as the pipeline does)."""
    ex = Exchange("e", "http", "GET", "/", Headers(raw=[(name, value)]), 0, 0)
    ex.headers.get(name.decode())
    return ex


def per_call(func: Callable[[], object], calls: int) -> float:
    """Return the mean nanoseconds per call of ``func`` over ``calls`` calls."""
    start = time.perf_counter_ns()
    for _ in range(calls):
        func()
    return (time.perf_counter_ns() - start) / calls


def main() -> None:
    """Measure every case in interleaved rounds and print medians and ratios."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_token = jwt.encode(CLAIMS, SECRET, algorithm="HS256")
    rs_token = jwt.encode(CLAIMS, private, algorithm="RS256", headers={"kid": "k1"})
    aud, iss = "api", "https://idp.example.com/"
    hs = JWTResolver(algorithms=["HS256"], secret=SECRET, audience=aud, issuer=iss)
    rs = JWTResolver(algorithms=["RS256"], public_keys={"k1": public_pem}, audience=aud, issuer=iss)
    hs_nocache = JWTResolver(
        algorithms=["HS256"], secret=SECRET, cache_size=0, audience=aud, issuer=iss
    )
    rs_nocache = JWTResolver(
        algorithms=["RS256"], public_keys={"k1": public_pem}, cache_size=0, audience=aud, issuer=iss
    )
    api_secret = b"api-secret-0123456789"
    registry = APIKeyRegistry(
        api_secret, [{"key_id": "ci", "hash": hash_key(api_secret, b"key-1")}]
    )
    api = APIKeyResolver(registry)
    hs_ex = exchange(b"authorization", b"Bearer " + hs_token.encode())
    rs_ex = exchange(b"authorization", b"Bearer " + rs_token.encode())
    api_ex = exchange(b"x-api-key", b"key-1")
    public_key = private.public_key()

    cases: dict[str, tuple[Callable[[], object], int]] = {
        "HS256 resolver, cache hit": (lambda: hs.resolve(hs_ex), 20000),
        "HS256 pyjwt.decode (uncached)": (
            lambda: jwt.decode(hs_token, SECRET, ["HS256"], audience=aud, issuer=iss), 2000),
        "HS256 resolver, cache off": (lambda: hs_nocache.resolve(hs_ex), 2000),
        "RS256 resolver, cache hit": (lambda: rs.resolve(rs_ex), 20000),
        "RS256 pyjwt.decode (uncached)": (
            lambda: jwt.decode(rs_token, public_key, ["RS256"], audience=aud, issuer=iss), 500),
        "RS256 resolver, cache off": (lambda: rs_nocache.resolve(rs_ex), 500),
        "API key resolver (HMAC lookup)": (lambda: api.resolve(api_ex), 20000),
    }  # fmt: skip
    for resolver, ex in ((hs, hs_ex), (rs, rs_ex)):
        actor = resolver.resolve(ex)
        assert actor is not None
        assert actor.auth.verified
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, (func, calls) in cases.items():
            samples[name].append(per_call(func, calls))
    median = {name: statistics.median(values) for name, values in samples.items()}

    print(f"{'case':34} {'median ns/call':>15}")
    for name, value in median.items():
        print(f"{name:34} {value:15.0f}")
    print()
    for alg in ("HS256", "RS256"):
        hit = median[f"{alg} resolver, cache hit"]
        decode = median[f"{alg} pyjwt.decode (uncached)"] / hit
        nocache = median[f"{alg} resolver, cache off"] / hit
        print(f"{alg}: pyjwt.decode / cache hit       = {decode:6.1f}x")
        print(f"{alg}: resolver cache off / cache hit = {nocache:6.1f}x")


if __name__ == "__main__":
    main()

"""``_core.chain_step`` against the Python reference of ``ChainEncoder._append``, byte for byte."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from auditmw.canonical import dumps
from auditmw.integrity.layout import EVENT_DOMAIN, MAC_DOMAIN
from tests.native.reference import Step, reference

if TYPE_CHECKING:
    from types import ModuleType

CHAIN_ID = "0192f5b2-7c1e-7a3b-9d4e-00000000002a"


def marker_for(chain_id: str, key: str = "integrity") -> bytes:
    """The marker ChainEncoder searches for (``self._marker``)."""
    return b'"' + key.encode() + b'":{"chain_id":"' + chain_id.encode() + b'",'


def native(  # noqa: PLR0917 - the argument order of chain_step
    core: ModuleType,
    body: bytes,
    head: bytes,
    marker: bytes,
    domain: bytes,
    mac: bytes | None,
    mac_domain: bytes,
) -> Step:
    key = None if mac is None else core.MacKey(mac)
    result: Step = core.chain_step(body, head, marker, domain, key, mac_domain)
    return result


def assert_same(
    core: ModuleType,
    body: bytes,
    head: bytes,
    marker: bytes,
    mac: bytes | None,
    *,
    domain: bytes = EVENT_DOMAIN,
    mac_domain: bytes = MAC_DOMAIN,
) -> Step:
    """Both paths agree, including on raising ValueError (and its message)."""
    try:
        expected = reference(body, head, marker, domain, mac, mac_domain)
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)):
            native(core, body, head, marker, domain, mac, mac_domain)
        return None, b"", "", None
    got = native(core, body, head, marker, domain, mac, mac_domain)
    assert got == expected
    assert [type(x) for x in got] == [type(x) for x in expected]
    return got


# -- values as events carry them: escapes, non-ASCII, control characters, big numbers ----

texts = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from('"\\/\x00\x1f\x7f'),
    max_size=40,
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
heads = st.sampled_from([b"\x00" * 32]) | st.binary(min_size=32, max_size=32) | st.binary()
mac_keys = st.none() | st.binary(min_size=32, max_size=32) | st.binary(max_size=200)


def event_body(
    event: dict[str, Any], head: bytes, seq: int, epoch: int | None, key: str = "integrity"
) -> bytes:
    """Serialize ``event`` with its integrity object as ``_serialize`` does."""
    integrity: dict[str, Any] = {"chain_id": CHAIN_ID, "prev": head.hex(), "seq": seq}
    if epoch is not None:
        integrity["epoch"] = epoch
    return dumps({**event, key: integrity})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    event=st.dictionaries(texts, json_values, max_size=8),
    head=heads,
    mac=mac_keys,
    seq=st.integers(min_value=1, max_value=2**63 - 1),
    epoch=st.integers(min_value=0, max_value=2**31),
)
def test_canonical_events(
    core: ModuleType, *, event: dict[str, Any], head: bytes, mac: bytes | None, seq: int, epoch: int
) -> None:
    """Real canonical lines: the seal lands where Python puts it, byte for byte."""
    event.pop("integrity", None)
    body = event_body(event, head, seq, None if mac is None else epoch)
    line, *_ = assert_same(core, body, head, marker_for(CHAIN_ID), mac)
    assert line is not None


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    event=st.dictionaries(texts, json_values, max_size=4),
    where=st.sampled_from(["actor", "annotations", "aaa", "zzz"]),
    same_chain=st.booleans(),
    mac=mac_keys,
)
def test_content_mimicking_the_integrity_object(
    core: ModuleType, event: dict[str, Any], where: str, same_chain: bool, mac: bytes | None
) -> None:
    """A nested ``integrity`` object naming the chain: marker twice, the fallback signal."""
    chain = CHAIN_ID if same_chain else CHAIN_ID[:-1] + "b"
    event.pop("integrity", None)
    event[where] = {"integrity": {"chain_id": chain, "prev": "x", "epoch": 1}}
    body = event_body(event, b"\x00" * 32, 1, None if mac is None else 0)
    line, *_ = assert_same(core, body, b"\x00" * 32, marker_for(CHAIN_ID), mac)
    assert (line is None) == same_chain


@settings(max_examples=500)
@given(
    parts=st.lists(st.binary(max_size=80), min_size=1, max_size=4),
    marker=st.binary(max_size=12) | st.sampled_from([marker_for(CHAIN_ID), b",", b'"', b""]),
    head=heads,
    mac=mac_keys,
    domain=st.binary(max_size=80),
    mac_domain=st.binary(max_size=80),
)
@example(parts=[b"", b""], marker=b"", head=b"", mac=None, domain=b"", mac_domain=b"")
@example(parts=[b"a", b""], marker=b"", head=b"", mac=b"k", domain=b"", mac_domain=b"")
@example(parts=[b"", b"x"], marker=b"m", head=b"", mac=b"k", domain=b"", mac_domain=b"")
@example(parts=[b"", b",x"], marker=b"m", head=b"", mac=b"k", domain=b"", mac_domain=b"")
@example(parts=[b"mm", b""], marker=b"mm", head=b"", mac=None, domain=b"", mac_domain=b"")
@example(parts=[b"", b"m"], marker=b"mm", head=b"", mac=None, domain=b"", mac_domain=b"")
def test_arbitrary_bytes(
    core: ModuleType,
    *,
    parts: list[bytes],
    marker: bytes,
    head: bytes,
    mac: bytes | None,
    domain: bytes,
    mac_domain: bytes,
) -> None:
    """Any body, with the marker absent, once or several times (joined between the parts);
    empty and overlapping markers, no comma after it, any domains, head and key lengths."""
    body = marker.join(parts)
    assert_same(core, body, head, marker, mac, domain=domain, mac_domain=mac_domain)


@pytest.mark.parametrize("size", [*range(130), 1000, 4095, 4096, 4097, 65_536, 1 << 20])
@pytest.mark.parametrize("mac", [None, b"k" * 32])
def test_boundary_and_huge_sizes(core: ModuleType, size: int, mac: bytes | None) -> None:
    """Every body length around the 64-byte blocks of SHA-256, and large ones."""
    body = marker_for(CHAIN_ID) + b'"epoch":3,' + bytes(i % 251 for i in range(size))
    assert_same(core, body, b"\x00" * 32, marker_for(CHAIN_ID), mac)
    assert_same(core, body[-size:] if size else b"", b"\x00" * 32, marker_for(CHAIN_ID), mac)


def test_accepts_other_buffers(core: ModuleType) -> None:
    """bytearray and memoryview are read like bytes."""
    body = event_body({"a": 1}, b"\x00" * 32, 1, 0)
    marker = marker_for(CHAIN_ID)
    key = core.MacKey(bytearray(b"k" * 32))
    want = core.chain_step(body, b"\x00" * 32, marker, EVENT_DOMAIN, key, MAC_DOMAIN)
    got = core.chain_step(
        bytearray(body), memoryview(b"\x00" * 32), marker, EVENT_DOMAIN, key, MAC_DOMAIN
    )
    assert got == want


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "exactly 6 arguments"),
        ((b"", b"", b"", b"", None), "exactly 6 arguments"),
        ((b"", b"", b"", b"", None, b"", b""), "exactly 6 arguments"),
        (("body", b"", b"", b"", None, b""), "body must be a bytes-like object, not str"),
        ((b"", None, b"", b"", None, b""), "head must be a bytes-like object"),
        ((b"", b"", 1, b"", None, b""), "marker must be a bytes-like object"),
        ((b"", b"", b"", [], None, b""), "event_domain must be a bytes-like object"),
        ((b"", b"", b"", b"", b"key", b""), "mac_key must be a MacKey or None, not bytes"),
        ((b"", b"", b"", b"", None, "x"), "mac_domain must be a bytes-like object"),
    ],
)
def test_bad_arguments_raise_type_error(
    core: ModuleType, args: tuple[object, ...], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        core.chain_step(*args)


def test_mac_key_is_not_copied(core: ModuleType) -> None:
    """The key's states cannot leave the process by pickling, nor be subclassed."""
    key = core.MacKey(b"k" * 32)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        type("Sub", (core.MacKey,), {})
    with pytest.raises(TypeError):
        core.MacKey("text")

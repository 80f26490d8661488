"""Shared exporter helpers: timestamps, hosts, addresses."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditmw.formats._common import is_ip, split_host, time_us

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class TestTimeUs:
    @given(st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1)))
    def test_canonical_form(self, moment: dt.datetime) -> None:
        """The fast path agrees with datetime arithmetic for any canonical timestamp."""
        aware = moment.replace(tzinfo=dt.UTC)
        text = aware.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert time_us(text) == (aware - _EPOCH) // dt.timedelta(microseconds=1)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("1970-01-01T00:00:01Z", 1_000_000, id="no-fraction"),
            pytest.param("1970-01-01T01:00:00.5+01:00", 500_000, id="offset"),
            pytest.param("1970-01-01T00:00:00.000001Z", 1, id="canonical"),
        ],
    )
    def test_other_rfc3339_forms(self, text: str, expected: int) -> None:
        """Other RFC 3339 forms take the slow path and give the same instant."""
        assert time_us(text) == expected

    def test_naive_rejected(self) -> None:
        """A timestamp without offset is refused rather than guessed."""
        with pytest.raises(ValueError, match="UTC offset"):
            time_us("2026-11-30T03:59:00")


class TestSplitHost:
    @pytest.mark.parametrize(
        ("host", "expected"),
        [
            pytest.param("api.example.com", ("api.example.com", None), id="name"),
            pytest.param("api.example.com:8443", ("api.example.com", 8443), id="name-port"),
            pytest.param("[2001:db8::1]:443", ("2001:db8::1", 443), id="ipv6-port"),
            pytest.param("[2001:db8::1]", ("2001:db8::1", None), id="ipv6"),
            pytest.param("2001:db8::1", ("2001:db8::1", None), id="bare-ipv6"),
            pytest.param("host:99999", ("host:99999", None), id="port-out-of-range"),
            pytest.param("[::1]:99999", ("::1", None), id="ipv6-port-out-of-range"),
        ],
    )
    def test_split(self, host: str, expected: tuple[str, int | None]) -> None:
        """Host and port are separated; invalid ports stay in the name."""
        assert split_host(host) == expected


class TestIsIp:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("203.0.113.7", True, id="ipv4"),
            pytest.param("2001:db8::1", True, id="ipv6"),
            pytest.param("testclient", False, id="name"),
            pytest.param("/run/app.sock", False, id="socket"),
            pytest.param("203.0.113.7:80", False, id="with-port"),
        ],
    )
    def test_is_ip(self, value: str, expected: bool) -> None:
        """Only real IPv4/IPv6 addresses count, also when asked twice (cached)."""
        assert is_ip(value) is expected
        assert is_ip(value) is expected

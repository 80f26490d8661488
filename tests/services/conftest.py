"""Real services for sink tests, and a TCP fault-injection proxy to put in front of them.

* ``FaultProxy`` forwards 127.0.0.1 connections to a real service and can cut them
  (optionally after N more bytes: mid-batch), pause them (a blackhole: nothing is
  read, so data waits in the kernel buffers as in a network partition), slow them,
  refuse new connections (the port stops listening) and restore them.
* ``http_receiver`` is a real HTTP(S) server in a thread that records what it gets
  and answers from a script (status codes, ``Retry-After``).
* ``rsyslog`` starts a real ``rsyslogd -n`` with UDP, TCP and TLS (gtls) inputs on
  free ports, writing what it receives to a file.
* ``pg_table`` / ``nats_stream`` give each test a unique table or stream and drop it.

A service that is absent skips the test with a reason, or fails it when
``AUDITMW_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from auditmw.canonical import new_event_id
from auditmw.delivery import Delivery
from auditmw.sinks.base import Batch
from tests.conftest import delivery_factory

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from auditmw.types import Event

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
NATS_URL = "nats://127.0.0.1:4222"


def unavailable(name: str, reason: str) -> None:
    """Skip because ``name`` is missing, or fail under ``AUDITMW_REQUIRE_SERVICES=1``."""
    message = f"service {name!r} unavailable: {reason}"
    if os.environ.get("AUDITMW_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (AUDITMW_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(message)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``check`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- the fault-injection proxy ------------------------------------------------------


class FaultProxy:
    """A threaded TCP proxy from ``127.0.0.1:port`` to ``target`` with injectable faults."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._flowing = threading.Event()
        self._flowing.set()
        self._delay = 0.0
        self._budget: int | None = None  # bytes client->server left before a cut
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._listener: socket.socket | None = None
        self.connections = 0
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed: refusing
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
                self.connections += 1
            for src, dst, metered in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, metered), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, metered: bool) -> None:
        try:
            while True:
                self._flowing.wait()
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()  # paused while we held data: keep holding it
                if self._delay:
                    time.sleep(self._delay)
                if metered and self._budget is not None:
                    allowed = self._spend(data)
                    if allowed is None:
                        return
                    data = allowed
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                _close(sock)

    def _spend(self, data: bytes) -> bytes | None:
        with self._lock:
            budget = self._budget
            if budget is None or len(data) < budget:
                if budget is not None:
                    self._budget = budget - len(data)
                return data
            self._budget = None
            pairs = list(self._pairs)
        # Forward only part of this chunk, then cut every connection: a batch torn mid-way.
        if budget:
            try:
                pairs[-1][1].sendall(data[:budget]) if pairs else None
            except OSError:
                pass
        self.cut()
        return None

    def cut(self, after_bytes: int | None = None) -> None:
        """Close every connection now, or once ``after_bytes`` more bytes went upstream."""
        if after_bytes is not None:
            self._budget = after_bytes
            return
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            _close(client)
            _close(upstream)

    def blackhole(self) -> None:
        """Stop moving bytes: connections stay open, nothing is read or answered."""
        self._flowing.clear()

    def slow(self, delay: float) -> None:
        """Delay every chunk by ``delay`` seconds."""
        self._delay = delay

    def refuse(self) -> None:
        """Stop listening (new connections are refused) and cut the open ones."""
        if self._listener is not None:
            _close(self._listener)
            self._listener = None
        self.cut()

    def restore(self) -> None:
        """Back to a clean pass-through."""
        self._delay = 0.0
        self._budget = None
        self._flowing.set()
        if self._listener is None:
            self._listen()

    def close(self) -> None:
        """Stop the proxy."""
        self._flowing.set()
        if self._listener is not None:
            _close(self._listener)
        self.cut()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@pytest.fixture
def fault_proxy() -> Iterator[Callable[[tuple[str, int]], FaultProxy]]:
    """A factory of fault proxies in front of a target, all closed after the test."""
    made: list[FaultProxy] = []

    def make(target: tuple[str, int]) -> FaultProxy:
        proxy = FaultProxy(target)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


# -- delivery helpers ----------------------------------------------------------------


@pytest.fixture
def make_delivery() -> Iterator[Callable[..., Delivery]]:
    """Build Delivery instances with fast retries; closed after the test."""
    yield from delivery_factory(retry_initial=0.05, retry_max=0.5, close_timeout=10)


def numbered(n: int) -> Event:
    """A minimal event carrying a sequence number in its annotations."""
    return {
        "schema_version": "1.0",
        "event_id": new_event_id(),
        "time": "2026-11-30T03:59:00.123456Z",
        "end_time": "2026-11-30T03:59:00.123456Z",
        "kind": "http",
        "action": "orders.read",
        "operation": "read",
        "outcome": "success",
        "severity": "info",
        "actor": {
            "id": f"user-{n % 7}",
            "type": "user",
            "auth": {"method": "jwt", "verified": True},
        },
        "resource": {"type": "orders", "id": str(n)},
        "service": {"name": "svc", "instance": "host/1"},
        "annotations": {"n": str(n)},
    }


def assert_complete_in_order(events: list[Event], total: int) -> None:
    """Every numbered event arrived at least once, first arrivals in order, lifecycle recorded."""
    firsts: list[int] = []
    seen: set[str] = set()
    for event in events:
        if event.get("kind") == "http" and event["event_id"] not in seen:
            seen.add(event["event_id"])
            firsts.append(int(event["annotations"]["n"]))
    assert firsts == list(range(total)), (
        f"missing or reordered: {sorted(set(range(total)) - set(firsts))}"
    )
    kinds = [e.get("kind") for e in events]
    assert "audit.sink_failed" in kinds
    assert "audit.sink_recovered" in kinds


# -- HTTP receiver -------------------------------------------------------------------


@dataclass
class Received:
    """One request the receiver accepted completely."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HTTPReceiver:
    """A scripted HTTP server: ``script`` holds (status, headers, body) answers to use first."""

    url: str
    requests: list[Received] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str], bytes]] = field(default_factory=deque)
    default: Callable[[Received], tuple[int, dict[str, str], bytes]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(receiver: HTTPReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            if len(body) != length:  # the connection was cut mid-body: nothing stored
                self.close_connection = True
                return
            request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with receiver.lock:
                if receiver.script:
                    status, headers, answer = receiver.script.popleft()
                else:
                    status, headers, answer = (
                        receiver.default(request) if receiver.default else (200, {}, b"{}")
                    )
                if status < 300:
                    receiver.requests.append(request)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(answer)))
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    return Handler


@pytest.fixture
def http_receiver() -> Iterator[Callable[..., HTTPReceiver]]:
    """Start scripted HTTP (or HTTPS with ``tls=(cert, key)``) receivers in threads."""
    servers: list[ThreadingHTTPServer] = []

    def start(tls: tuple[Path, Path] | None = None) -> HTTPReceiver:
        receiver = HTTPReceiver(url="")
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
        server.daemon_threads = True
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        receiver.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# -- TLS material ----------------------------------------------------------------------


@pytest.fixture
def tls_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost, made with ``cryptography``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    alt = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(alt, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


# -- rsyslog -------------------------------------------------------------------------

_RSYSLOG_CONF = """
global(workDirectory="{work}" maxMessageSize="64k"
       defaultNetstreamDriverCAFile="{cert}"
       defaultNetstreamDriverCertFile="{cert}"
       defaultNetstreamDriverKeyFile="{key}")
module(load="imudp")
module(load="imtcp" maxSessions="200")
template(name="audit" type="string" string="%msgid%\\t%structured-data%\\t%msg%\\n")
ruleset(name="audit") {{ action(type="omfile" file="{out}" template="audit") }}
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="audit")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="audit")
input(type="imtcp" address="127.0.0.1" port="{tls}" ruleset="audit"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
"""


@dataclass
class Rsyslog:
    """A running rsyslogd and where it writes."""

    udp: int
    tcp: int
    tls: int
    out: Path

    def records(self) -> list[tuple[str, str, Event]]:
        """``(msgid, structured data, event)`` per complete line; torn messages are skipped."""
        if not self.out.exists():
            return []
        found = []
        for line in self.out.read_bytes().decode("utf-8", "replace").splitlines():
            parts = line.split("\t", 2)
            if len(parts) != 3:
                continue
            msgid, sd, msg = parts
            try:
                event = orjson.loads(msg.lstrip("\ufeff"))
            except orjson.JSONDecodeError:
                continue
            found.append((msgid, sd, event))
        return found


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture
def rsyslog(tmp_path: Path, tls_cert: tuple[Path, Path]) -> Iterator[Rsyslog]:
    """A real rsyslogd in the foreground, listening on free loopback ports."""
    binary = shutil.which("rsyslogd") or (
        "/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None
    )
    if binary is None:
        unavailable("rsyslog", "rsyslogd is not installed (apt-get install rsyslog rsyslog-gnutls)")
    assert binary is not None
    work = tmp_path / "rsyslog"
    work.mkdir()
    server = Rsyslog(free_port(socket.SOCK_DGRAM), free_port(), free_port(), work / "out.log")
    conf = work / "rsyslog.conf"
    conf.write_text(
        _RSYSLOG_CONF.format(
            work=work,
            cert=tls_cert[0],
            key=tls_cert[1],
            out=server.out,
            udp=server.udp,
            tcp=server.tcp,
            tls=server.tls,
        )
    )
    log = (work / "rsyslogd.log").open("wb")
    process = subprocess.Popen(
        [binary, "-n", "-f", str(conf), "-i", str(work / "pid")], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 10
        while not (_listening(server.tcp) and _listening(server.tls)):
            if process.poll() is not None or time.monotonic() > deadline:
                unavailable("rsyslog", (work / "rsyslogd.log").read_text()[-500:])
            time.sleep(0.05)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


# -- PostgreSQL and NATS ---------------------------------------------------------------


@pytest.fixture
def pg_table() -> Iterator[str]:
    """A unique table name, dropped (with its triggers) after the test."""
    psycopg = pytest.importorskip("psycopg")
    table = f"audit_test_{uuid.uuid4().hex[:12]}"
    yield table
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def pg_rows(table: str) -> list[Event]:
    """The stored events of ``table`` in insertion order."""
    import psycopg

    with psycopg.connect(PG_DSN) as conn:
        try:
            rows = conn.execute(f"SELECT line FROM {table} ORDER BY id").fetchall()  # noqa: S608
        except psycopg.errors.UndefinedTable:
            return []  # not created yet: the sink creates it on its first connection
    return [orjson.loads(row[0]) for row in rows]


@dataclass
class NatsStream:
    """A unique JetStream stream and subject."""

    name: str
    subject: str

    def messages(self) -> list[Event]:
        """Every stored message, in stream order."""
        return asyncio.run(self._fetch())

    async def _fetch(self) -> list[Event]:
        import nats
        import nats.js.errors

        nc = await nats.connect(NATS_URL)
        try:
            js = nc.jetstream()
            try:
                info = await js.stream_info(self.name)
            except nats.js.errors.NotFoundError:
                return []  # not created yet: the sink creates it on its first connection
            if info.state.messages == 0:
                return []
            out = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(self.name, seq)
                assert msg.data is not None
                out.append(orjson.loads(msg.data))
            return out
        finally:
            await nc.close()


@pytest.fixture
def nats_stream() -> Iterator[NatsStream]:
    """A unique stream name and subject; the stream is deleted after the test."""
    pytest.importorskip("nats")
    token = uuid.uuid4().hex[:10]
    stream = NatsStream(f"AUDIT_{token.upper()}", f"audit.test.{token}")
    yield stream

    async def delete() -> None:
        import nats
        import nats.js.errors

        nc = await nats.connect(NATS_URL)
        try:
            await nc.jetstream().delete_stream(stream.name)
        except nats.js.errors.NotFoundError:
            pass
        finally:
            await nc.close()

    asyncio.run(delete())


def fault_scenario(delivery: Delivery, proxy: FaultProxy, chunk: int = 15) -> int:
    """Submit numbered events while the proxy cuts mid-batch, blackholes, slows and refuses.

    Each fault lasts a moment and is then restored; returns how many events were sent.
    """
    faults: list[Callable[[], None]] = [
        lambda: proxy.cut(after_bytes=200),
        proxy.blackhole,
        lambda: proxy.slow(0.02),
        proxy.refuse,
    ]
    sent = 0

    def burst() -> None:
        nonlocal sent
        for _ in range(chunk):
            delivery.submit(numbered(sent))
            sent += 1
        delivery.flush(10)

    for fault in faults:
        burst()
        fault()
        burst()
        time.sleep(0.3)
        proxy.restore()
    burst()
    return sent


def numbered_batch(start: int, count: int) -> Batch:
    """A batch of ``count`` numbered events starting at ``start``."""
    events = [numbered(i) for i in range(start, start + count)]
    return Batch(events, [orjson.dumps(e) for e in events])


def emit_all(sink: Any, *batches: Batch) -> None:
    """Hand ``batches`` to an async sink in order, then close it."""

    async def run() -> None:
        try:
            for sent in batches:
                await sink.aemit(sent)
        finally:
            await sink.aclose()

    asyncio.run(run())

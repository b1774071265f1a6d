"""The outbound-HTTP guard: hostile URLs and addresses (generated), the resolved address checked
and pinned (plain and TLS, against local servers), no redirects, timeouts and the size cap."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal import outbound

EXAMPLES = 300 if os.environ.get("CI", "").lower() in {"1", "true", "yes"} else 80
KOBO_HOSTS = frozenset({"kf.kobotoolbox.org", "eu.kobotoolbox.org"})
STRICT = outbound.Policy("KoboToolbox", KOBO_HOSTS, allow_http=True)


def local_policy(**changes) -> outbound.Policy:
    """The test configuration's allowance: a name played by the resolver stub, on 127.0.0.1."""
    base = {
        "provider": "Test",
        "hosts": frozenset({"provider.test:*"}),
        "allow_http": True,
        "private_hosts": frozenset({"provider.test"}),
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
    }
    base.update(changes)
    return outbound.Policy(**base)


# --------------------------------------------------------------------------- generated addresses

# Addresses no provider request may reach, with the blocks they come from.
_BLOCKED_V4 = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "0.0.0.0/8",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "192.0.0.0/24",
    "198.18.0.0/15",
]
_BLOCKED_V6 = ["::1/128", "::/128", "fe80::/10", "fc00::/7", "ff00::/8", "2001:db8::/32"]


def _in(network: str):
    net = ipaddress.ip_network(network)
    return st.integers(0, net.num_addresses - 1).map(lambda i: net[i])


blocked_v4 = st.sampled_from(_BLOCKED_V4).flatmap(_in)
blocked_v6 = st.sampled_from(_BLOCKED_V6).flatmap(_in)


def _wrapped(v4: ipaddress.IPv4Address) -> st.SearchStrategy:
    """The IPv4 address inside an IPv6 one: mapped, 6to4, NAT64, Teredo (client)."""
    n = int(v4)
    return st.sampled_from(
        [
            ipaddress.IPv6Address(f"::ffff:{v4}"),
            ipaddress.IPv6Address((0x2002 << 112) | (n << 80)),
            ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | n),
            ipaddress.IPv6Address((0x20010000 << 96) | (n ^ 0xFFFFFFFF)),
        ]
    )


blocked_address = st.one_of(blocked_v4, blocked_v6, blocked_v4.flatmap(_wrapped)).map(str)


def _v4_spellings(v4: ipaddress.IPv4Address) -> st.SearchStrategy:
    """Ways inet_aton and browsers read an IPv4 address: decimal, octal, hex, short forms."""
    n = int(v4)
    a, b, c, d = v4.packed
    return st.sampled_from(
        [
            str(v4),
            str(n),
            hex(n),
            hex(n).upper().replace("X", "x"),
            oct(n).replace("0o", "0"),
            f"{a}.{(b << 16) | (c << 8) | d}",
            f"{a}.{b}.{(c << 8) | d}",
            f"{hex(a)}.{b}.{c}.{d}",
            f"0{a:o}.{b}.{c}.{d}",
            f"{hex(a)}.{hex(b)}.{hex(c)}.{hex(d)}",
            f"{v4}.",
            f"[::ffff:{v4}]",
            f"[::{v4}]",
        ]
    )


hostile_host = st.one_of(
    blocked_v4.flatmap(_v4_spellings),
    blocked_address.map(lambda a: f"[{a}]" if ":" in a else a),
    st.sampled_from(["localhost", "LOCALHOST.", "metadata.google.internal", "0", "0x0"]),
)


@st.composite
def hostile_url(draw) -> str:
    host = draw(hostile_host)
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "HtTpS"]))
    port = draw(st.sampled_from(["", ":80", ":443", ":8080", ":22"]))
    form = draw(st.integers(0, 5))
    allowed = draw(st.sampled_from(sorted(KOBO_HOSTS)))
    if form == 0:  # userinfo that names an allowed host
        netloc = f"{allowed}@{host}{port}"
    elif form == 1:
        netloc = f"{allowed}:{draw(st.text('abc', max_size=4))}@{host}{port}"
    elif form == 2:  # an allowed name as a prefix
        netloc = f"{allowed}.{host.strip('[]')}{port}"
    elif form == 3:
        netloc = f"{host.upper()}{port}"
    else:
        netloc = f"{host}{port}"
    return f"{scheme}://{netloc}/{draw(st.sampled_from(['', 'api/v2/assets/x/data/']))}"


@settings(derandomize=True, max_examples=EXAMPLES, deadline=None)
@given(url=hostile_url())
def test_hostile_urls_are_refused_before_any_connection(url):
    calls = []

    def resolve(host, port):  # the stub plays DNS: any name leads home
        calls.append(host)
        return ["127.0.0.1"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(outbound, "resolve", resolve)
        mp.setattr("urllib3.connection.connection.create_connection", _no_connect)
        with pytest.raises(outbound.Refused):
            outbound.request("GET", url, STRICT)


def _no_connect(*args, **kwargs):
    raise AssertionError("a connection was attempted")


@settings(derandomize=True, max_examples=EXAMPLES, deadline=None)
@given(
    answers=st.lists(blocked_address, min_size=1, max_size=3),
    public_first=st.booleans(),
    host=st.sampled_from(["kf.kobotoolbox.org", "KF.kobotoolbox.org.", "eu.kobotoolbox.org"]),
)
def test_an_allowed_name_resolving_to_a_private_address_is_refused(answers, public_first, host):
    if public_first:  # one public answer does not launder the others
        answers = ["104.18.12.34", *answers]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(outbound, "resolve", lambda h, p: answers)
        mp.setattr("urllib3.connection.connection.create_connection", _no_connect)
        with pytest.raises(outbound.Refused, match="not on the public Internet"):
            outbound.request("GET", f"https://{host}/api/v2/", STRICT)


@settings(derandomize=True, max_examples=EXAMPLES, deadline=None)
@given(address=blocked_address)
def test_no_blocked_address_counts_as_public(address):
    assert not outbound.is_public(address)


@pytest.mark.parametrize(
    "address", ["104.18.12.34", "8.8.8.8", "2606:4700::6810:c22", "2001:4860:4860::8888"]
)
def test_public_addresses_are_public(address):
    assert outbound.is_public(address)


@pytest.mark.parametrize(
    "url",
    [
        "https://kf.kobotoolbox.org/",
        "https://KF.KOBOTOOLBOX.ORG/api",
        "https://kf.kobotoolbox.org./api",
        "https://kf.kobotoolbox.org:443/",
        "http://eu.kobotoolbox.org/",
    ],
)
def test_allowed_spellings_pass_the_static_check(url):
    target = outbound.check_url(url, STRICT)
    assert target.host in KOBO_HOSTS


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://kf.kobotoolbox.org/", "https://"),
        ("file:///etc/passwd", "https://"),
        ("https://kf.kobotoolbox.org:8443/", "not an allowed"),
        ("https://kobotoolbox.org/", "not an allowed"),
        ("https://kf.kobotoolbox.org.evil.example/", "not an allowed"),
        ("https://kf.kobotoolbox.org\\@evil.example/", "backslash"),
        ("https://kf.kobotoolbox.org\t/", "control"),
        ("https://kf.kobotoolbox.org:0/", "port"),
        ("https://kf.kobotoolbox.org:99999/", "port"),
        ("https://[::1/", "not a URL"),
        ("https:///api", "no host"),
    ],
)
def test_malformed_or_unlisted_urls_say_why(url, why):
    with pytest.raises(outbound.Refused, match=why):
        outbound.check_url(url, STRICT)


def test_production_ignores_the_development_allowances():
    config = {
        "ENV_NAME": "production",
        "OUTBOUND_ALLOW_HTTP": True,
        "OUTBOUND_PRIVATE_HOSTS": "127.0.0.1",
    }
    policy = outbound.policy_from_config("Test", config, ["127.0.0.1:*", "kf.kobotoolbox.org"])
    assert not policy.allow_http and not policy.private_hosts
    with pytest.raises(outbound.Refused, match="https"):
        outbound.check_url("http://kf.kobotoolbox.org/", policy)
    with pytest.raises(outbound.Refused, match="public Internet"):
        outbound.check_url("https://127.0.0.1:8443/", policy)
    development = outbound.policy_from_config("Test", {**config, "ENV_NAME": "embedded"}, [])
    assert development.allow_http and development.private_hosts == {"127.0.0.1"}


@pytest.mark.parametrize(
    ("entry", "canonical"),
    [
        ("KF.KoboToolbox.org.", "kf.kobotoolbox.org"),
        ("kobo.example.org:8443", "kobo.example.org:8443"),
        ("127.0.0.1:*", "127.0.0.1:*"),
        ("[::1]:*", "[::1]:*"),
    ],
)
def test_allow_list_entries_are_canonical(entry, canonical):
    assert outbound.host_entry(entry) == canonical


@pytest.mark.parametrize("entry", ["kobo.example.org:http", "2130706433", "a:b:c", "[::1]x", ""])
def test_bad_allow_list_entries_are_refused(entry):
    with pytest.raises(outbound.Refused):
        outbound.host_entry(entry)


# --------------------------------------------------------------------------- local servers


class _Server:
    """A local HTTP(S) server whose handler a test gives; records what it was sent."""

    def __init__(self, respond, context: ssl.SSLContext | None = None):
        self.seen: list[dict] = []
        self.server_names: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.seen.append({"path": self.path, "host": self.headers.get("Host")})
                respond(self)

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # the client left on purpose (size cap, timeout)

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        if context is not None:
            context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    started: list[_Server] = []

    def serve(respond, context=None) -> _Server:
        server = _Server(respond, context)
        started.append(server)
        return server

    yield serve
    for server in started:
        server.close()


@pytest.fixture
def stub_dns(monkeypatch):
    """provider.test (and any other name) resolves to 127.0.0.1; counts the look-ups."""
    looked_up: list[str] = []

    def resolve(host, port):
        looked_up.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(outbound, "resolve", resolve)
    return looked_up


def _answer(status=200, body=b'{"ok": true}', headers=()):
    def respond(handler):
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def test_the_checked_address_is_the_one_connected_to(serve, stub_dns, monkeypatch):
    server = serve(_answer())
    connected: list[tuple] = []
    real = outbound.urllib3.connection.connection.create_connection

    def spy(address, *args, **kwargs):
        connected.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr("urllib3.connection.connection.create_connection", spy)
    reply = outbound.request("GET", f"http://provider.test:{server.port}/a?b=1", local_policy())
    assert reply.status == 200 and reply.json() == {"ok": True}
    assert stub_dns == ["provider.test"]  # resolved once
    assert connected == [("127.0.0.1", server.port)]  # the checked address, not the name again
    assert server.seen == [{"path": "/a?b=1", "host": f"provider.test:{server.port}"}]


def test_an_unreachable_address_falls_back_to_the_next_checked_one(serve, monkeypatch):
    server = serve(_answer())
    monkeypatch.setattr(outbound, "resolve", lambda host, port: ["127.0.0.2", "127.0.0.1"])
    connected: list[tuple] = []
    real = outbound.urllib3.connection.connection.create_connection

    def spy(address, *args, **kwargs):
        connected.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr("urllib3.connection.connection.create_connection", spy)
    reply = outbound.request("GET", f"http://provider.test:{server.port}/", local_policy())
    assert reply.status == 200
    assert connected == [("127.0.0.2", server.port), ("127.0.0.1", server.port)]
    assert len(server.seen) == 1


def test_redirects_are_not_followed(serve, stub_dns):
    server = serve(_answer(302, b"", [("Location", "http://169.254.169.254/latest/meta-data/")]))
    reply = outbound.request("GET", f"http://provider.test:{server.port}/", local_policy())
    assert reply.status == 302 and len(server.seen) == 1


def test_a_huge_body_is_capped(serve, stub_dns):
    def endless(handler):  # no Content-Length: the size is only known by reading
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        try:
            for _ in range(4096):
                handler.wfile.write(b"x" * 65536)
        except OSError:
            pass

    server = serve(endless)
    policy = local_policy(max_bytes=256 * 1024)
    with pytest.raises(outbound.TooLarge):
        outbound.request("GET", f"http://provider.test:{server.port}/", policy)


def test_a_declared_huge_body_is_not_read(serve, stub_dns):
    def declared(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(10**12))
        handler.end_headers()

    server = serve(declared)
    with pytest.raises(outbound.TooLarge, match="not read"):
        outbound.request(
            "GET", f"http://provider.test:{server.port}/", local_policy(max_bytes=1024)
        )


def test_a_silent_server_times_out(serve, stub_dns):
    def silent(handler):
        time.sleep(1.5)
        _answer()(handler)

    server = serve(silent)
    started = time.monotonic()
    with pytest.raises(outbound.TimedOut):
        outbound.request(
            "GET", f"http://provider.test:{server.port}/", local_policy(read_timeout=0.3)
        )
    assert time.monotonic() - started < 1.4


def test_a_dripping_server_hits_the_overall_deadline(serve, stub_dns):
    def drip(handler):  # each byte arrives within the read timeout, the whole never does
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        try:
            for _ in range(1000):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    server = serve(drip)
    policy = local_policy(read_timeout=1.0, total_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(outbound.TimedOut):
        outbound.request("GET", f"http://provider.test:{server.port}/", policy)
    assert time.monotonic() - started < 2.5


def test_deeply_nested_json_is_refused_before_decoding():
    reply = outbound.Reply(200, {}, b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ValueError, match="too deep"):
        reply.json()
    assert outbound.Reply(200, {}, b'{"a": "[[[[", "b": [1, [2]]}').json()["b"] == [1, [2]]


# --------------------------------------------------------------------------- TLS


def _certificates(tmp_path, name: str):
    """A test CA and a server certificate for ``name`` it signed; the CA's path and a context."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def build(subject, issuer, key, signer, *, ca: bool, san: str | None = None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = build("Test CA", "Test CA", ca_key, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build(name, "Test CA", key, ca_key, ca=False, san=name)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (tmp_path / "server.pem").write_bytes(
        cert.public_bytes(pem)
        + key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem")
    return str(tmp_path / "ca.pem"), context


def test_tls_names_and_verifies_the_host_while_connecting_to_the_pinned_address(
    tmp_path, serve, stub_dns
):
    ca, context = _certificates(tmp_path, "provider.test")
    server = serve(_answer(), context)
    policy = local_policy(allow_http=False, ca_certs=ca)
    reply = outbound.request("GET", f"https://provider.test:{server.port}/", policy)
    assert reply.status == 200
    assert server.server_names == ["provider.test"]  # SNI carries the name, not the IP
    assert server.seen[0]["host"] == f"provider.test:{server.port}"


def test_tls_refuses_a_certificate_for_another_name(tmp_path, serve, stub_dns):
    ca, context = _certificates(tmp_path, "someone-else.test")
    server = serve(_answer(), context)
    policy = local_policy(allow_http=False, ca_certs=ca)
    with pytest.raises(outbound.Failed, match="could not be reached"):
        outbound.request("GET", f"https://provider.test:{server.port}/", policy)
    assert server.seen == []


def test_tls_refuses_an_unknown_authority(tmp_path, serve, stub_dns):
    _, context = _certificates(tmp_path, "provider.test")
    server = serve(_answer(), context)
    with pytest.raises(outbound.Failed):
        outbound.request(
            "GET", f"https://provider.test:{server.port}/", local_policy(allow_http=False)
        )
    assert server.seen == []

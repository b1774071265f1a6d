"""The one way out: every HTTP request the portal makes to a provider goes through here.

A provider's URL is typed by staff (a Kobo server) or set by the operator (the SMS API), and the
request carries a secret (an API token, basic auth). So before anything is sent:

- the URL must be plain: http(s) only (https only in production), no user name or password in it,
  a host that is a DNS name or a canonical IP literal (no ``2130706433``, ``0x7f.1``, ``0177.1``);
- the host (and port) must be on the provider's allow-list;
- the name is resolved once, every address it resolves to must be public (not private, loopback,
  link-local, multicast, reserved or unspecified, also when wrapped in an IPv4-mapped, 6to4,
  Teredo or NAT64 IPv6 address), and the connection goes to those checked addresses only: a
  second DNS answer cannot swap in another one. TLS still sends the name (SNI) and verifies
  the certificate for it, and the Host header names it;
- redirects are not followed (a 3xx is returned like any other status);
- connecting, each read and the whole exchange have time limits, and the body is read up to a
  size cap, then dropped.

Development and tests may allow plain http and name hosts that may resolve to private addresses
(the local stand-ins); production ignores both settings.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

try:  # the CA bundle requests uses; the system's otherwise
    import certifi

    _CA_BUNDLE: str | None = certifi.where()
except ImportError:  # pragma: no cover - certifi comes with requests
    _CA_BUNDLE = None

DEFAULT_PORTS = {"http": 80, "https": 443}
ANY_PORT = "*"
# A JSON answer nested deeper than this is refused before decoding (the decoder recurses).
MAX_JSON_DEPTH = 64
_CHUNK = 64 * 1024
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
# A last label that inet_aton would read as a number: the name is an IPv4 spelling, not a name.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Not globally reachable (IANA special-purpose registries) though the ipaddress module calls
# some of their addresses global: IETF protocol assignments, local-use NAT64.
_NOT_PUBLIC = (ipaddress.ip_network("192.0.0.0/24"), ipaddress.ip_network("64:ff9b:1::/48"))


class Refused(Exception):
    """The request is not allowed (URL, host or address); the message says why, safe to show."""


class Failed(Exception):
    """The request was allowed but did not complete (network, TLS, timeout, size)."""


class TimedOut(Failed):
    pass


class TooLarge(Failed):
    pass


@dataclass(frozen=True)
class Policy:
    """What one provider may reach. ``hosts`` entries: ``name`` (the scheme's default port),
    ``name:port`` or ``name:*``."""

    provider: str
    hosts: frozenset[str]
    allow_http: bool = False
    # Hosts that may resolve to non-public addresses: local stand-ins in development and tests.
    private_hosts: frozenset[str] = frozenset()
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    total_timeout: float = 120.0
    max_bytes: int = 32 * 1024 * 1024
    ca_certs: str | None = None


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # canonical: lower case, IDNA, no trailing dot, IPv6 without brackets
    port: int
    path: str  # path and query, as sent on the request line

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == DEFAULT_PORTS[self.scheme] else f"{name}:{self.port}"


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)

    def json(self):
        """The body as JSON; ValueError when it is not JSON or is nested absurdly deep."""
        if _too_deep(self.body, MAX_JSON_DEPTH):
            raise ValueError("JSON nested too deep")
        return json.loads(self.body)


# --------------------------------------------------------------------------- settings


def split_list(value: str | Iterable[str] | None) -> list[str]:
    """A setting's list of hosts: comma or whitespace separated text, or already a list."""
    if value is None:
        return []
    items = re.split(r"[,\s]+", value) if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]


def host_entry(raw: str) -> str:
    """One allow-list entry in canonical form; Refused when it is not ``host[:port|:*]``."""
    text = raw.strip().lower()
    port: str | None = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise Refused(f"“{raw}” is not a host name, host:port or host:*.")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host = text
    host = canonical_host(host)
    if port is not None and port != ANY_PORT:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise Refused(f"“{raw}” has no valid port.")
        port = str(int(port))
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def host_entries(value: str | Iterable[str] | None) -> frozenset[str]:
    return frozenset(host_entry(item) for item in split_list(value))


def policy_from_config(provider: str, config: Mapping, hosts: Iterable[str], **limits) -> Policy:
    """The provider's policy under the deployment's settings (production: https, public only)."""
    production = config.get("ENV_NAME") == "production"
    private = () if production else split_list(config.get("OUTBOUND_PRIVATE_HOSTS"))
    settings = {
        "provider": provider,
        "hosts": host_entries(hosts),
        "allow_http": bool(config.get("OUTBOUND_ALLOW_HTTP")) and not production,
        "private_hosts": frozenset(canonical_host(h) for h in private),
        "connect_timeout": float(config.get("OUTBOUND_CONNECT_TIMEOUT_SECONDS") or 5),
        "read_timeout": float(config.get("OUTBOUND_READ_TIMEOUT_SECONDS") or 30),
        "total_timeout": float(config.get("OUTBOUND_TOTAL_TIMEOUT_SECONDS") or 120),
        "max_bytes": int(config.get("OUTBOUND_MAX_BYTES") or 32 * 1024 * 1024),
        "ca_certs": config.get("OUTBOUND_CA_BUNDLE") or None,
    }
    settings.update(limits)  # a provider's own limits (an SMS answer is small and quick)
    return Policy(**settings)


# --------------------------------------------------------------------------- checks


def canonical_host(raw: str) -> str:
    """The host as it will be resolved and named; Refused for anything but a name or an IP."""
    host = (raw or "").strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise Refused("The URL has no host.")
    if ":" in host:  # only an IPv6 literal has colons here
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise Refused(f"“{raw}” is not a host name or an IP address.") from None
        return str(address)
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise Refused(f"“{raw}” is not a host name.") from None
    try:
        return str(ipaddress.IPv4Address(host))  # only the dotted-quad spelling parses
    except ValueError:
        pass
    labels = host.split(".")
    if (
        len(host) > 253
        or not all(_LABEL.match(label) for label in labels)
        or _NUMERIC_LABEL.match(labels[-1])
    ):
        raise Refused(f"“{raw}” is not a host name or an IP address.")
    return host


def check_url(url: str, policy: Policy) -> Target:
    """The checks that need no network: scheme, form of the URL, host and port allowed."""
    if not isinstance(url, str) or not url:
        raise Refused("No URL.")
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in url):
        # urlsplit quietly drops tabs and newlines: refuse what a browser would rewrite.
        raise Refused("The URL holds spaces, control characters or a backslash.")
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - raises for a malformed [IPv6] host
    except ValueError:
        raise Refused("This is not a URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise Refused("The URL must start with https://.")
    if scheme == "http" and not policy.allow_http:
        raise Refused("The URL must start with https:// (plain http is not allowed).")
    if "@" in parts.netloc:
        raise Refused("The URL must not hold a user name or password.")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is None:
        port = DEFAULT_PORTS[scheme]
    elif port == 0:
        raise Refused("The URL's port is not a number from 1 to 65535.")
    host = canonical_host(parts.hostname or "")
    target = Target(scheme, host, port, _path(parts))
    if not _listed(target, policy):
        raise Refused(
            f"{host} is not an allowed {policy.provider} server"
            + (f" (allowed: {', '.join(sorted(policy.hosts))})." if policy.hosts else ".")
        )
    if _is_ip(host):
        check_address(host, host, policy)
    return target


def _path(parts) -> str:
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _listed(target: Target, policy: Policy) -> bool:
    shown = f"[{target.host}]" if ":" in target.host else target.host
    default = target.port == DEFAULT_PORTS[target.scheme]
    return (
        (default and shown in policy.hosts)
        or f"{shown}:{target.port}" in policy.hosts
        or f"{shown}:{ANY_PORT}" in policy.hosts
    )


def _embedded(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list:
    """The address and every IPv4 address it carries (mapped, 6to4, Teredo, NAT64)."""
    found = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            found.append(address.ipv4_mapped)
        if address.sixtofour:
            found.append(address.sixtofour)
        if address.teredo:
            found.extend(address.teredo)
        if address in _NAT64:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public(address: str) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False  # scoped IPv6 ("fe80::1%eth0") and anything odd
    return all(
        a.is_global
        and not (
            a.is_private
            or a.is_loopback
            or a.is_link_local
            or a.is_multicast
            or a.is_reserved
            or a.is_unspecified
            or any(a in net for net in _NOT_PUBLIC if net.version == a.version)
        )
        for a in _embedded(parsed)
    )


def check_address(address: str, host: str, policy: Policy) -> None:
    if host in policy.private_hosts or is_public(address):
        return
    raise Refused(f"{host} leads to an address that is not on the public Internet; refused.")


def resolve(host: str, port: int) -> list[str]:
    """Every address the name has now (tests replace this to play DNS)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def checked_addresses(target: Target, policy: Policy) -> list[str]:
    """Resolve once and check every answer: these, and only these, are connected to."""
    if _is_ip(target.host):
        addresses = [target.host]
    else:
        try:
            addresses = resolve(target.host, target.port)
        except (OSError, UnicodeError):
            raise Failed(f"{target.host} could not be found (DNS).") from None
    if not addresses:
        raise Failed(f"{target.host} could not be found (DNS).")
    for address in addresses:
        check_address(address, target.host, policy)
    return addresses


# --------------------------------------------------------------------------- the request


def request(
    method: str,
    url: str,
    policy: Policy,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    """Send one request under ``policy``; Refused before anything is sent, Failed on the way."""
    started = time.monotonic()
    target = check_url(url, policy)
    addresses = checked_addresses(target, policy)
    sent = {"Accept-Encoding": "identity", **(headers or {}), "Host": target.host_header}
    for address in addresses[:-1]:
        try:
            return _exchange(method, target, address, policy, sent, body, started)
        except _NotConnected:
            continue  # nothing was sent: the name's next checked address
    try:
        return _exchange(method, target, addresses[-1], policy, sent, body, started)
    except _NotConnected as failed:
        raise failed.failure from None


class _NotConnected(Exception):
    def __init__(self, failure: Failed):
        self.failure = failure


def _exchange(
    method: str,
    target: Target,
    address: str,
    policy: Policy,
    headers: dict[str, str],
    body: bytes | None,
    started: float,
) -> Reply:
    timeout = urllib3.Timeout(connect=policy.connect_timeout, read=policy.read_timeout)
    options: dict = {"timeout": timeout, "retries": False, "maxsize": 1}
    expired = threading.Event()
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            address,
            target.port,
            cert_reqs="CERT_REQUIRED",
            ca_certs=policy.ca_certs or _CA_BUNDLE,
            server_hostname=target.host,  # SNI, and the name the certificate must hold
            **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, **options)
    pool.ConnectionCls = _watched(pool.ConnectionCls, started + policy.total_timeout, expired)
    reply = None
    try:
        reply = pool.urlopen(
            method,
            target.path,
            body=body,
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        content = _read_capped(reply, policy, started)
        return Reply(reply.status, dict(reply.headers), content)
    except (HTTPError, OSError) as exc:
        failure = _failure(exc, target.host, expired.is_set())
        if isinstance(exc, ConnectTimeoutError) and not expired.is_set():
            raise _NotConnected(failure) from None  # no connection, so nothing sent
        raise failure from None
    finally:
        if reply is not None:
            reply.release_conn()
        pool.close()


def _failure(exc: Exception, host: str, expired: bool) -> Failed:
    if expired:  # the watchdog shut the socket
        return TimedOut(f"{host} took too long to answer; stopped.")
    if isinstance(exc, NewConnectionError):  # urllib3 files it under timeouts; it is not one
        return Failed(f"{host} could not be reached (no connection).")
    if isinstance(exc, Urllib3Timeout | TimeoutError):
        return TimedOut(f"{host} did not answer in time.")
    return Failed(f"{host} could not be reached ({type(exc).__name__}).")


def _watched(base: type, deadline: float, expired: threading.Event) -> type:
    """The pool's connection class, whose socket is shut when the overall time is up: the
    per-read timeout alone lets a server drip bytes for ever."""

    class Watched(base):
        _timer: threading.Timer | None = None

        def _new_conn(self):
            sock = super()._new_conn()

            def expire() -> None:
                expired.set()
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

            self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
            self._timer.daemon = True
            self._timer.start()
            return sock

        def close(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
            super().close()

    return Watched


def _read_capped(reply, policy: Policy, started: float) -> bytes:
    declared = reply.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > policy.max_bytes:
        raise TooLarge(f"The answer is larger than {policy.max_bytes} bytes; not read.")
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() - started > policy.total_timeout:
            raise TimedOut("The answer took too long to arrive; stopped.")
        chunk = reply.read(_CHUNK, decode_content=False)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > policy.max_bytes:
            raise TooLarge(f"The answer is larger than {policy.max_bytes} bytes; stopped.")
        chunks.append(chunk)


def _too_deep(raw: bytes, limit: int) -> bool:
    """Brackets nest deeper than ``limit`` (strings left out): checked before the recursive
    decoder runs."""
    outside = re.sub(rb'"(?:[^"\\]|\\.)*"', b"", raw)
    depth = 0
    for byte in re.sub(rb"[^\[\]{}]", b"", outside):
        depth += 1 if byte in b"[{" else -1
        if depth > limit:
            return True
    return False

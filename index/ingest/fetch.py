"""Safe HTTP(S) GET for pages and feeds: `fetch(url, policy)` → `FetchResult`, or `FetchError`.

What "safe" means here (all enforced per request, on every redirect hop):

* only `http:` and `https:` URLs;
* the host is resolved once with `getaddrinfo`; every address that is loopback, private, link-local,
  multicast, reserved, unspecified or otherwise not globally routable (IPv4 and IPv6, IPv4-mapped and
  NAT64 IPv6 judged by the IPv4 address inside) is refused unless `FetchPolicy.allow_private` is set or
  the address lies in one of `FetchPolicy.allowed_networks`;
* the connection goes to the address that was checked (no second DNS lookup), while the `Host` header,
  TLS SNI and certificate verification use the real host name;
* redirects (301/302/303/307/308) are followed by hand, at most `max_redirects` of them;
* the body is capped at `max_bytes` (after decompression): a `Content-Length` above the cap is refused
  before reading, a body without one stops being read one byte past the cap;
* one deadline, `timeout` seconds from the call, covers connecting, TLS, headers and body of every hop,
  so a server that drips one byte a second fails at about `timeout` instead of hanging. (Name
  resolution is the one step it cannot interrupt: `getaddrinfo` has no timeout of its own.)

Units: `timeout` in seconds, `max_bytes` in bytes (of the decoded body).

One module on purpose (about 480 lines): the address checks, the connection pinned to the checked
address, the deadline and the body cap all guard the same request, and are only safe used together.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import socket
import ssl
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit

ACCEPT_HTML = "text/html,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.5"
ACCEPT_FEED = (
    "application/rss+xml,application/atom+xml,application/rdf+xml;q=0.9,"
    "application/xml;q=0.8,text/xml;q=0.8,*/*;q=0.5"
)

# Content types a page or feed may come as. text/plain is here because misconfigured servers serve
# feeds as text/plain; a response without any Content-Type is accepted too (the parsers sniff it).
ALLOWED_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/xml", "application/xml", "text/plain"})

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024  # bytes read per call while streaming a body
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class FetchError(Exception):
    """A fetch that did not produce a usable page; the message is short and says why."""


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one fetch (every redirect hop included).

    timeout: seconds for the whole fetch. max_bytes: largest accepted body, in bytes after decoding.
    allowed_networks: CIDR strings ("127.0.0.1/32", "::1/128") let through even though non-public.
    max_article_bytes: largest article text extracted from a page or feed entry (0 = no limit; checked
    by the callers that extract articles, `bot.ingest`).
    """

    timeout: float = 15.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    allow_private: bool = False
    allowed_networks: tuple[str, ...] = ()
    max_article_bytes: int = 0
    user_agent: str = "newsbot/0.1 (+https://github.com/newsbot)"
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.max_bytes < 0 or self.max_redirects < 0:
            raise ValueError("max_bytes and max_redirects must not be negative")
        nets = tuple(ipaddress.ip_network(n, strict=False) for n in self.allowed_networks)
        object.__setattr__(self, "_networks", nets)


@dataclass(frozen=True)
class FetchResult:
    """The final response of a fetch.

    url: the final URL, after redirects. content_type: the bare media type, lower case ("text/html"),
    '' when the server sent none. charset: from the Content-Type header, if any. body: the decoded
    (decompressed) bytes, b'' when not_modified. etag / last_modified: the validators to send next time;
    on a 304 that does not repeat them, the ones that were sent.
    """

    url: str
    status: int
    content_type: str
    charset: str | None
    body: bytes
    etag: str | None
    last_modified: str | None
    not_modified: bool


def fetch(
    url: str,
    policy: FetchPolicy | None = None,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    accept: str = ACCEPT_HTML,
    ssl_context: ssl.SSLContext | None = None,
) -> FetchResult:
    """GET `url` under `policy`, following redirects; raise `FetchError` for anything unusable.

    `etag` / `last_modified` make the request conditional (If-None-Match / If-Modified-Since); a 304
    answer gives `not_modified=True` and an empty body. `ssl_context` replaces the default verifying
    context (tests use it to trust their own CA); verification of the host name always stays on.
    """
    policy = policy or FetchPolicy()
    deadline = time.monotonic() + policy.timeout
    context = ssl_context or ssl.create_default_context()
    headers = {
        "User-Agent": policy.user_agent,
        "Accept": accept,
        "Accept-Encoding": "gzip, deflate",
        "Connection": "close",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified

    current = url
    for hop in range(policy.max_redirects + 1):
        status, location, result = _request_once(current, policy, headers, deadline, context)
        if result is not None:
            if result.not_modified:
                result = FetchResult(
                    url=result.url,
                    status=result.status,
                    content_type=result.content_type,
                    charset=result.charset,
                    body=b"",
                    etag=result.etag or etag,
                    last_modified=result.last_modified or last_modified,
                    not_modified=True,
                )
            return result
        if not location:
            raise FetchError(f"HTTP {status} redirect without a Location")
        current = urljoin(current, location.strip())
        if hop == policy.max_redirects:
            break
    raise FetchError(f"too many redirects ({policy.max_redirects + 1})")


def check_address(address: str, policy: FetchPolicy | None = None, host: str = "") -> None:
    """Raise `FetchError` if `policy` forbids connecting to IP `address` (`host`: its name, for messages)."""
    policy = policy or FetchPolicy()
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    effective: ipaddress.IPv4Address | ipaddress.IPv6Address = ip
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            effective = ip.ipv4_mapped
        elif ip in _NAT64:
            effective = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if policy.allow_private:
        return
    if any(a in net for a in {ip, effective} for net in policy._networks if a.version == net.version):
        return
    kind = _non_public_kind(effective)
    if kind is None:
        return
    shown = f"{ip} ({effective})" if effective != ip else str(ip)
    via = f", the address of {host}" if host and host != address else ""
    raise FetchError(f"refused: {shown} is {kind} address{via}")


def _non_public_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """'a loopback', 'a private', ... for a non-public address; None for a public one."""
    checks = (
        ("is_unspecified", "an unspecified"),
        ("is_loopback", "a loopback"),
        ("is_link_local", "a link-local"),
        ("is_multicast", "a multicast"),
        ("is_reserved", "a reserved"),
        ("is_private", "a private"),
    )
    for attr, kind in checks:
        if getattr(ip, attr):
            return kind
    if not ip.is_global:  # shared address space 100.64.0.0/10 and the like
        return "a non-public"
    return None


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # ASCII (IDNA) host name or IP literal, without brackets
    port: int
    path: str  # request target: path and query, percent-encoded


def _parse_target(url: str) -> _Target:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"bad URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"'{scheme}:'" if scheme else "no scheme"
        raise FetchError(f"refused: only http and https URLs are fetched, not {shown}")
    host = parts.hostname or ""
    if not host:
        raise FetchError(f"bad URL: no host in {url!r}")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise FetchError(f"bad URL: host {host!r} is not a valid name") from None
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return _Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _resolve(target: _Target, policy: FetchPolicy) -> list[tuple[int, tuple]]:
    """The (family, sockaddr) pairs for the host that the policy allows, in resolver order."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {target.host}: {exc}") from None
    allowed: list[tuple[int, tuple]] = []
    first_refusal: FetchError | None = None
    for family, _type, _proto, _canon, sockaddr in infos:
        try:
            check_address(str(sockaddr[0]), policy, host=target.host)
        except FetchError as exc:
            first_refusal = first_refusal or exc
            continue
        if (family, sockaddr) not in allowed:
            allowed.append((family, sockaddr))
    if not allowed:
        raise first_refusal or FetchError(f"cannot resolve {target.host}: no addresses")
    return allowed


class _DeadlineSocket:
    """What http.client needs of a socket (sendall, makefile, close), bound to one deadline.

    Like a real socket, it stays open until it and every file made from it are closed.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._refs = 1

    def settimeout_left(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self._sock.settimeout(left)

    def sendall(self, data: bytes) -> None:
        self.settimeout_left()
        self._sock.sendall(data)

    def recv_into(self, buffer: memoryview | bytearray) -> int:
        self.settimeout_left()
        return self._sock.recv_into(buffer)

    def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> io.BufferedReader:
        self._refs += 1
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        self._refs -= 1
        if self._refs <= 0:
            self._sock.close()


class _DeadlineReader(io.RawIOBase):
    """Raw reader whose every receive gets only the time left until the deadline."""

    def __init__(self, owner: _DeadlineSocket) -> None:
        self._owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        return self._owner.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._owner.close()
        super().close()


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to fixed socket addresses that speaks to `host` (Host header, SNI, cert)."""

    def __init__(
        self,
        target: _Target,
        addresses: list[tuple[int, tuple]],
        deadline: float,
        context: ssl.SSLContext,
    ) -> None:
        super().__init__(target.host, target.port)
        self.default_port = 443 if target.scheme == "https" else 80  # so Host omits the default port
        self._target = target
        self._addresses = addresses
        self._deadline = deadline
        self._context = context

    def connect(self) -> None:
        last_error: OSError | None = None
        sock: socket.socket | None = None
        for family, sockaddr in self._addresses:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            candidate = socket.socket(family, socket.SOCK_STREAM)
            candidate.settimeout(left)
            try:
                candidate.connect(sockaddr)
            except TimeoutError:
                candidate.close()
                raise
            except OSError as exc:  # refused / unreachable: try the next address
                candidate.close()
                last_error = exc
                continue
            sock = candidate
            break
        if sock is None:
            raise last_error or OSError("no address to connect to")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._target.scheme == "https":
            left = self._deadline - time.monotonic()
            if left <= 0:
                sock.close()
                raise TimeoutError
            sock.settimeout(left)
            try:
                sock = self._context.wrap_socket(sock, server_hostname=self._target.host)
            except BaseException:
                sock.close()
                raise
        self.sock = _DeadlineSocket(sock, self._deadline)  # type: ignore[assignment]


def _request_once(
    url: str,
    policy: FetchPolicy,
    headers: dict[str, str],
    deadline: float,
    context: ssl.SSLContext,
) -> tuple[int, str | None, FetchResult | None]:
    """One GET. Returns (status, Location, None) for a redirect, else (status, None, result)."""
    target = _parse_target(url)
    addresses = _resolve(target, policy)
    conn = _PinnedConnection(target, addresses, deadline, context)
    resp: http.client.HTTPResponse | None = None
    try:
        try:
            conn.request("GET", target.path, headers=headers)
            resp = conn.getresponse()
            status = resp.status
            if status in REDIRECT_CODES:
                return status, resp.getheader("Location"), None
            etag = resp.getheader("ETag")
            last_modified = resp.getheader("Last-Modified")
            content_type, charset = _content_type(resp.getheader("Content-Type") or "")
            if status == 304:
                return (
                    status,
                    None,
                    FetchResult(url, status, content_type, charset, b"", etag, last_modified, True),
                )
            if not 200 <= status < 300:
                raise FetchError(f"HTTP {status}")
            if content_type and not _allowed_type(content_type):
                raise FetchError(f"not an HTML/XML page: {content_type}")
            length = resp.getheader("Content-Length")
            encoding = (resp.getheader("Content-Encoding") or "identity").strip().lower()
            if length and length.strip().isdigit() and int(length) > policy.max_bytes:
                raise FetchError(f"too large: more than {policy.max_bytes:,} bytes")
            body = _read_body(_stream(resp), encoding, policy.max_bytes)
        except TimeoutError:
            raise FetchError(f"timed out after {policy.timeout:g} s") from None
        except ssl.SSLCertVerificationError as exc:
            raise FetchError(f"TLS certificate error for {target.host}: {exc.verify_message}") from None
        except ssl.SSLError as exc:
            raise FetchError(f"TLS error for {target.host}: {exc.reason or exc}") from None
        except ConnectionRefusedError:
            raise FetchError(f"connection refused: {target.host}:{target.port}") from None
        except http.client.HTTPException as exc:
            raise FetchError(f"bad HTTP response: {type(exc).__name__}") from None
        except OSError as exc:
            raise FetchError(f"network error: {exc.strerror or exc}") from None
    finally:
        if resp is not None:
            resp.close()
        conn.close()
    return status, None, FetchResult(url, status, content_type, charset, body, etag, last_modified, False)


def _content_type(header: str) -> tuple[str, str | None]:
    """('text/html', 'utf-8') from 'text/html; charset="UTF-8"'."""
    if not header.strip():
        return "", None
    mime, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'").lower()
    return mime.strip().lower(), charset


def _allowed_type(mime: str) -> bool:
    return mime in ALLOWED_TYPES or mime.endswith("+xml")


def _stream(resp: http.client.HTTPResponse) -> Iterable[bytes]:
    while True:
        chunk = resp.read(_CHUNK)
        if not chunk:
            return
        yield chunk


def _read_body(chunks: Iterable[bytes], encoding: str, max_bytes: int) -> bytes:
    """Join and decompress `chunks`, failing as soon as the decoded size passes `max_bytes`."""
    too_large = FetchError(f"too large: more than {max_bytes:,} bytes")
    out = bytearray()
    if encoding in ("identity", ""):
        for chunk in chunks:
            out += chunk
            if len(out) > max_bytes:
                raise too_large
        return bytes(out)
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS  # zlib-wrapped; raw deflate is detected below
    else:
        raise FetchError(f"unsupported Content-Encoding: {encoding}")
    decoder = zlib.decompressobj(wbits)
    first = True
    try:
        for chunk in chunks:
            if first and encoding == "deflate" and not _zlib_header(chunk):
                decoder = zlib.decompressobj(-zlib.MAX_WBITS)  # servers that send raw deflate
            first = False
            data = chunk
            while data:
                out += decoder.decompress(data, max_bytes + 1 - len(out))
                if len(out) > max_bytes:
                    raise too_large
                data = decoder.unconsumed_tail
        out += decoder.flush()
    except zlib.error as exc:
        raise FetchError(f"bad {encoding} body: {exc}") from None
    if len(out) > max_bytes:
        raise too_large
    return bytes(out)


def _zlib_header(data: bytes) -> bool:
    """Whether `data` starts with a zlib header (RFC 1950) rather than raw deflate."""
    return len(data) >= 2 and (data[0] & 0x0F) == 8 and (data[0] * 256 + data[1]) % 31 == 0

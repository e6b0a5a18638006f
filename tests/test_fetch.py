"""index.fetch against real HTTP(S) servers on loopback addresses (see http_fixtures)."""

from __future__ import annotations

import gzip
import socket
import ssl
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsbot.index.ingest.fetch import FetchError, FetchPolicy, check_address, fetch
from tests.helpers import LOCAL
from tests.http_fixtures import LocalServer, Response, self_signed_cert

PAGE = b"<html><head><title>t</title></head><body><p>hello</p></body></html>"


@pytest.fixture
def other_loopback() -> Iterator[LocalServer]:
    """A server on 127.0.0.2: loopback, but outside LOCAL's allowed network."""
    try:
        srv = LocalServer("127.0.0.2")
    except OSError as exc:  # pragma: no cover - only where 127.0.0.2 is not routed to lo
        pytest.skip(f"cannot bind 127.0.0.2: {exc}")
    with srv:
        yield srv


# -- success paths ---------------------------------------------------------------------------------


def test_plain_page(server: LocalServer) -> None:
    server.add("/page", PAGE, content_type="text/html; charset=ISO-8859-1")
    result = fetch(server.url("/page"), LOCAL)
    assert result.status == 200
    assert result.body == PAGE
    assert result.content_type == "text/html"
    assert result.charset == "iso-8859-1"
    assert result.url == server.url("/page")
    assert not result.not_modified
    req = server.requests[0]
    assert req.header("User-Agent") == LOCAL.user_agent
    assert req.header("Host") == f"127.0.0.1:{server.port}"


def test_redirect_chain_is_followed_and_final_url_reported(server: LocalServer) -> None:
    server.redirect("/a", "/b", status=301)
    server.redirect("/b", "c", status=302)  # relative to /b → /c
    server.redirect("/c", server.url("/d"), status=303)
    server.redirect("/d", "/e?x=1", status=307)
    server.redirect("/e", "/final", status=308)
    server.add("/final", PAGE)
    result = fetch(server.url("/a"), LOCAL)
    assert result.url == server.url("/final")
    assert result.body == PAGE
    assert [r.path for r in server.requests] == ["/a", "/b", "/c", "/d", "/e?x=1", "/final"]


def test_endless_redirect_loop(server: LocalServer) -> None:
    server.redirect("/loop", "/loop")
    with pytest.raises(FetchError, match=r"^too many redirects \(6\)$"):
        fetch(server.url("/loop"), LOCAL)
    assert server.hits("/loop") == 6  # the first request and five redirects


def test_max_redirects_is_exact(server: LocalServer) -> None:
    server.redirect("/1", "/2")
    server.redirect("/2", "/3")
    server.add("/3", PAGE)
    assert fetch(
        server.url("/1"), FetchPolicy(timeout=2, max_redirects=2, allowed_networks=("127.0.0.1/32",))
    )
    with pytest.raises(FetchError, match=r"too many redirects \(2\)"):
        fetch(server.url("/1"), FetchPolicy(timeout=2, max_redirects=1, allowed_networks=("127.0.0.1/32",)))


def test_redirect_without_location(server: LocalServer) -> None:
    server.add("/r", status=302)
    with pytest.raises(FetchError, match="redirect without a Location"):
        fetch(server.url("/r"), LOCAL)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_compressed_bodies_are_decoded(server: LocalServer, encoding: str) -> None:
    big = PAGE * 50
    if encoding == "gzip":
        data = gzip.compress(big)
    elif encoding == "deflate":
        data = zlib.compress(big)
    else:
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data = compressor.compress(big) + compressor.flush()
    header = "gzip" if encoding == "gzip" else "deflate"
    server.add("/z", data, headers={"Content-Encoding": header})
    result = fetch(server.url("/z"), LOCAL)
    assert result.body == big
    assert "gzip" in (server.requests[0].header("Accept-Encoding") or "")


def test_chunked_body(server: LocalServer) -> None:
    server.respond("/c", lambda _r: Response(body=[b"<html>", b"<p>x</p>", b"</html>"], chunked=True))
    assert fetch(server.url("/c"), LOCAL).body == b"<html><p>x</p></html>"


@pytest.mark.parametrize(
    "content_type",
    ["application/rss+xml", "application/atom+xml", "text/xml; charset=utf-8", "application/xhtml+xml", None],
)
def test_feed_and_xml_types_accepted(server: LocalServer, content_type: str | None) -> None:
    server.add("/f", b"<rss/>", content_type=content_type)
    assert fetch(server.url("/f"), LOCAL).body == b"<rss/>"


# -- conditional requests --------------------------------------------------------------------------


def test_etag_gives_304_not_modified(server: LocalServer) -> None:
    res = server.resource("/page", PAGE)
    first = fetch(server.url("/page"), LOCAL)
    assert first.etag == res.etag and first.last_modified == res.last_modified
    second = fetch(server.url("/page"), LOCAL, etag=first.etag)
    assert second.not_modified and second.status == 304 and second.body == b""
    assert second.etag == res.etag
    assert server.requests[1].header("If-None-Match") == res.etag
    res.update(PAGE + b"<!-- v2 -->")
    third = fetch(server.url("/page"), LOCAL, etag=first.etag)
    assert not third.not_modified and third.body.endswith(b"v2 -->") and third.etag != first.etag


def test_last_modified_gives_304(server: LocalServer) -> None:
    server.resource("/page", PAGE, etag=False)
    first = fetch(server.url("/page"), LOCAL)
    assert first.etag is None and first.last_modified
    second = fetch(server.url("/page"), LOCAL, last_modified=first.last_modified)
    assert second.not_modified
    assert second.last_modified == first.last_modified
    assert server.requests[1].header("If-Modified-Since") == first.last_modified


def test_304_without_validators_keeps_the_sent_ones(server: LocalServer) -> None:
    server.add("/p", status=304, content_type=None, content_length=False)
    result = fetch(server.url("/p"), LOCAL, etag='"abc"', last_modified="Tue, 14 Nov 2023 22:13:20 GMT")
    assert result.not_modified
    assert result.etag == '"abc"' and result.last_modified == "Tue, 14 Nov 2023 22:13:20 GMT"


# -- refusals: size, time, type, status ------------------------------------------------------------


def test_too_large_with_content_length_is_refused_before_reading(server: LocalServer) -> None:
    server.add("/big", b"x" * 5000)
    policy = FetchPolicy(timeout=2, max_bytes=1000, allowed_networks=("127.0.0.1/32",))
    with pytest.raises(FetchError, match=r"^too large: more than 1,000 bytes$"):
        fetch(server.url("/big"), policy)


def test_too_large_lying_content_length_still_stops(server: LocalServer) -> None:
    # Content-Length says 10, the server keeps sending until the connection closes
    server.add("/liar", b"x" * 5000, content_length=10)
    policy = FetchPolicy(timeout=2, max_bytes=1000, allowed_networks=("127.0.0.1/32",))
    result = fetch(server.url("/liar"), policy)
    assert result.body == b"x" * 10  # http.client honours the declared length


@pytest.mark.parametrize("chunked", [False, True])
def test_too_large_without_content_length(server: LocalServer, chunked: bool) -> None:
    server.add("/big", b"x" * 300_000, content_length=False, chunked=chunked)
    policy = FetchPolicy(timeout=2, max_bytes=100_000, allowed_networks=("127.0.0.1/32",))
    with pytest.raises(FetchError, match=r"^too large: more than 100,000 bytes$"):
        fetch(server.url("/big"), policy)


def test_decompression_bomb_is_capped(server: LocalServer) -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)  # about 20 KB on the wire
    server.add("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    policy = FetchPolicy(timeout=2, max_bytes=1_000_000, allowed_networks=("127.0.0.1/32",))
    with pytest.raises(FetchError, match=r"^too large: more than 1,000,000 bytes$"):
        fetch(server.url("/bomb"), policy)


def test_slow_drip_times_out_at_the_deadline(server: LocalServer) -> None:
    server.drip("/slow", b"<html>" + b"x" * 100, interval=0.2)  # 5 bytes/s: each read succeeds
    policy = FetchPolicy(timeout=1.0, allowed_networks=("127.0.0.1/32",))
    start = time.monotonic()
    with pytest.raises(FetchError, match=r"^timed out after 1 s$"):
        fetch(server.url("/slow"), policy)
    assert 0.8 < time.monotonic() - start < 1.8


def test_server_that_never_answers_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the TCP connection (backlog) but never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        start = time.monotonic()
        with pytest.raises(FetchError, match="timed out after 0.5 s"):
            fetch(url, FetchPolicy(timeout=0.5, allowed_networks=("127.0.0.1/32",)))
        assert time.monotonic() - start < 1.5
    finally:
        listener.close()


def test_binary_response_is_refused(server: LocalServer) -> None:
    server.add("/img.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, content_type="image/png")
    server.add("/bin", b"\0\1\2", content_type="application/octet-stream")
    with pytest.raises(FetchError, match=r"^not an HTML/XML page: image/png$"):
        fetch(server.url("/img.png"), LOCAL)
    with pytest.raises(FetchError, match=r"^not an HTML/XML page: application/octet-stream$"):
        fetch(server.url("/bin"), LOCAL)


@pytest.mark.parametrize("status", [404, 410, 500, 503])
def test_error_status(server: LocalServer, status: int) -> None:
    server.add("/e", b"oops", status=status)
    with pytest.raises(FetchError, match=rf"^HTTP {status}$"):
        fetch(server.url("/e"), LOCAL)


def test_connection_refused() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(FetchError, match="connection refused"):
        fetch(f"http://127.0.0.1:{port}/", LOCAL)


# -- refusals: schemes and addresses ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/x",
        "javascript:alert(1)",
        "data:text/html,hi",
        "gopher://x/",
        "//x/",
    ],
)
def test_non_http_schemes_are_refused(url: str) -> None:
    with pytest.raises(FetchError, match="^refused: only http and https URLs are fetched"):
        fetch(url, LOCAL)


@pytest.mark.parametrize("url", ["http:///nohost", "http://[::1/", "http://127.0.0.1:99999/"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(FetchError):
        fetch(url, LOCAL)


def test_loopback_refused_by_default(server: LocalServer) -> None:
    server.add("/", PAGE)
    with pytest.raises(FetchError, match=r"^refused: 127\.0\.0\.1 is a loopback address$"):
        fetch(server.url("/"))
    assert server.hits() == 0  # refused before connecting


def test_allow_private_lets_it_through(server: LocalServer) -> None:
    server.add("/", PAGE)
    assert fetch(server.url("/"), FetchPolicy(timeout=2, allow_private=True)).body == PAGE


def test_other_loopback_address_outside_allowed_networks(other_loopback: LocalServer) -> None:
    other_loopback.add("/", PAGE)
    with pytest.raises(FetchError, match=r"^refused: 127\.0\.0\.2 is a loopback address$"):
        fetch(other_loopback.url("/"), LOCAL)
    assert other_loopback.hits() == 0


def test_redirect_to_refused_address_is_stopped(server: LocalServer, other_loopback: LocalServer) -> None:
    other_loopback.add("/secret", b"<html>internal</html>")
    server.redirect("/go", other_loopback.url("/secret"))
    with pytest.raises(FetchError, match=r"^refused: 127\.0\.0\.2 is a loopback address$"):
        fetch(server.url("/go"), LOCAL)
    assert server.hits("/go") == 1
    assert other_loopback.hits() == 0  # never contacted


def test_redirect_to_non_http_scheme_is_stopped(server: LocalServer) -> None:
    server.redirect("/go", "file:///etc/passwd")
    with pytest.raises(FetchError, match="^refused: only http and https"):
        fetch(server.url("/go"), LOCAL)


def test_hostname_resolving_to_loopback_is_refused(server: LocalServer) -> None:
    server.add("/", PAGE)
    with pytest.raises(FetchError, match=r"^refused: .* is a loopback address, the address of localhost$"):
        fetch(server.url("/", host="localhost"))
    assert server.hits() == 0


def test_hostname_is_pinned_and_sent_as_host(server: LocalServer) -> None:
    """localhost may resolve to ::1 first (nothing listens there): the next allowed address is used."""
    server.add("/", PAGE)
    policy = FetchPolicy(timeout=2, allowed_networks=("127.0.0.1/32", "::1/128"))
    result = fetch(server.url("/", host="localhost"), policy)
    assert result.body == PAGE
    assert server.requests[0].header("Host") == f"localhost:{server.port}"


@pytest.mark.parametrize("host", ["[::1]", "[::ffff:127.0.0.1]", "0.0.0.0", "[::]", "127.1", "2130706433"])
def test_loopback_spellings_are_refused(host: str) -> None:
    with pytest.raises(FetchError, match="^refused: .* is an? (loopback|unspecified) address"):
        fetch(f"http://{host}:9/", FetchPolicy(timeout=1))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:10.0.0.5", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::a00:5", "private"),  # NAT64 form of 10.0.0.5
    ],
)
def test_check_address_refuses_non_public(address: str, kind: str) -> None:
    with pytest.raises(FetchError, match=f"is an? {kind} address"):
        check_address(address)


def test_check_address_message() -> None:
    with pytest.raises(FetchError) as info:
        check_address("10.0.0.5")
    assert str(info.value) == "refused: 10.0.0.5 is a private address"


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_check_address_allows_public(address: str) -> None:
    check_address(address)


def test_allowed_networks_are_exact() -> None:
    policy = FetchPolicy(allowed_networks=("127.0.0.1/32", "10.1.0.0/16"))
    check_address("127.0.0.1", policy)
    check_address("::ffff:127.0.0.1", policy)
    check_address("10.1.2.3", policy)
    for refused in ("127.0.0.2", "10.2.0.1", "::1"):
        with pytest.raises(FetchError):
            check_address(refused, policy)
    check_address("10.2.0.1", FetchPolicy(allow_private=True))


def test_policy_validates_networks() -> None:
    with pytest.raises(ValueError):
        FetchPolicy(allowed_networks=("not-a-network",))
    with pytest.raises(ValueError):
        FetchPolicy(timeout=0)


# -- HTTPS: the pinned address still verifies the certificate of the host name --------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    try:
        return self_signed_cert(tmp_path_factory.mktemp("tls"), dns_names=("localhost",))
    except (RuntimeError, OSError) as exc:  # pragma: no cover - openssl missing
        pytest.skip(str(exc))


@pytest.fixture
def tls_server(tls_files: tuple[Path, Path]) -> Iterator[LocalServer]:
    cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with LocalServer(tls=context) as srv:
        yield srv


def test_https_verifies_the_host_name_while_pinned(
    tls_server: LocalServer, tls_files: tuple[Path, Path]
) -> None:
    tls_server.add("/", PAGE)
    client = ssl.create_default_context(cafile=str(tls_files[0]))
    policy = FetchPolicy(timeout=2, allowed_networks=("127.0.0.1/32", "::1/128"))
    result = fetch(tls_server.url("/", host="localhost"), policy, ssl_context=client)
    assert result.body == PAGE
    assert tls_server.requests[0].header("Host") == f"localhost:{tls_server.port}"


def test_https_certificate_mismatch_fails(tls_server: LocalServer, tls_files: tuple[Path, Path]) -> None:
    tls_server.add("/", PAGE)
    client = ssl.create_default_context(cafile=str(tls_files[0]))
    # the certificate names "localhost", not 127.0.0.1
    with pytest.raises(FetchError, match="^TLS certificate error for 127.0.0.1"):
        fetch(tls_server.url("/"), LOCAL, ssl_context=client)


def test_https_untrusted_certificate_fails(tls_server: LocalServer) -> None:
    tls_server.add("/", PAGE)
    policy = FetchPolicy(timeout=2, allowed_networks=("127.0.0.1/32", "::1/128"))
    with pytest.raises(FetchError, match="^TLS certificate error for localhost"):
        fetch(tls_server.url("/", host="localhost"), policy)

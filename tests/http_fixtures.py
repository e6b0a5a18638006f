"""A real HTTP(S) server on a loopback address for tests, with routes registered per test.

    from tests.http_fixtures import LocalServer, Response

    with LocalServer() as srv:                      # binds 127.0.0.1 on a free port
        srv.add("/page", b"<html>...</html>")        # static body (200, text/html, Content-Length)
        srv.redirect("/old", "/page", status=301)    # Location may be relative or absolute
        srv.add("/boom", status=500)
        srv.drip("/slow", b"x" * 100, interval=1.0)  # one chunk of 1 byte per `interval` seconds
        feed = srv.resource("/feed.xml", rss_v1, content_type="application/rss+xml")
        ...                                          # fetch srv.url("/old"), srv.url("/feed.xml")
        feed.update(rss_v2)                          # new body, new ETag and Last-Modified
        assert srv.hits("/feed.xml") == 2

Routes
    add(path, body, status=, content_type=, headers=, content_length=, chunked=)  one fixed response
    redirect(path, location, status=302)                                             a redirect
    drip(path, body, interval=, ...)                 the body sent one byte at a time, `interval` s apart
    sequence(path, [Response, ...])                  the n-th request gets the n-th response (last repeats)
    resource(path, body, ...) -> Resource           ETag / Last-Modified validators; answers 304 when the
                                                     request's If-None-Match / If-Modified-Since match;
                                                     `Resource.update(body)` changes the content
    respond(path, handler)                           any `handler(Request) -> Response`
Unknown paths get 404. A route registered with a query string ("/a?x=1") matches only that query;
otherwise the path alone is matched. Every request is recorded in `srv.requests` (`Request`:
method, path, headers with lower-case names); `srv.hits(path)` counts them.

`Response.content_length`: True = the real length, False = none (the body ends when the connection
closes, or is chunked with `chunked=True`), an int = that value, whatever the body is.
`LocalServer(host="127.0.0.2")` binds another loopback address; `LocalServer(tls=context)` serves
HTTPS with an `ssl.SSLContext` built from `self_signed_cert()`.

Each response carries `Connection: close`. The server runs in a daemon thread; leaving the `with`
block (or `close()`) stops it and wakes any dripping handler.

The `server` fixture (this module is registered in tests/conftest.py) is a `LocalServer()` for one test.
"""

from __future__ import annotations

import email.utils
import hashlib
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import pytest

__all__ = ["LocalServer", "Request", "Resource", "Response", "self_signed_cert"]


@dataclass(frozen=True)
class Request:
    """A request the server received. `headers` has lower-case names; `path` includes the query."""

    method: str
    path: str
    headers: dict[str, str]

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    """What a route answers. `body` is bytes or a list of chunks (written `delay` seconds apart)."""

    status: int = 200
    body: bytes | list[bytes] = b""
    content_type: str | None = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    content_length: bool | int = True
    chunked: bool = False
    delay: float = 0.0  # seconds between chunks of a list body

    def chunks(self) -> list[bytes]:
        return [self.body] if isinstance(self.body, bytes) else list(self.body)


Handler = Callable[[Request], Response]


class Resource:
    """A URL with validators: ETag (a hash of the body) and Last-Modified (moves on each update)."""

    _EPOCH = 1_700_000_000  # seconds since 1970: Last-Modified of the first version

    def __init__(
        self,
        body: bytes,
        *,
        content_type: str,
        use_etag: bool = True,
        use_last_modified: bool = True,
    ) -> None:
        self._lock = threading.Lock()
        self.content_type = content_type
        self.use_etag = use_etag
        self.use_last_modified = use_last_modified
        self.version = 0
        self.not_modified_count = 0
        self._set(body)

    def _set(self, body: bytes) -> None:
        self.body = body
        self.etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        self.last_modified = email.utils.formatdate(self._EPOCH + 60 * self.version, usegmt=True)

    def update(self, body: bytes) -> None:
        """Serve `body` from now on, with a new ETag and a Last-Modified one minute later."""
        with self._lock:
            self.version += 1
            self._set(body)

    def __call__(self, request: Request) -> Response:
        with self._lock:
            headers: dict[str, str] = {}
            if self.use_etag:
                headers["ETag"] = self.etag
            if self.use_last_modified:
                headers["Last-Modified"] = self.last_modified
            if self._fresh(request):
                self.not_modified_count += 1
                return Response(304, b"", content_type=None, headers=headers, content_length=False)
            return Response(200, self.body, content_type=self.content_type, headers=headers)

    def _fresh(self, request: Request) -> bool:
        inm = request.header("If-None-Match")
        if inm is not None and self.use_etag:  # If-None-Match wins over If-Modified-Since (RFC 9110)
            tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
            return "*" in tags or self.etag in tags
        ims = request.header("If-Modified-Since")
        if ims is not None and self.use_last_modified:
            try:
                since = email.utils.parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
            return since >= email.utils.parsedate_to_datetime(self.last_modified)
        return False


class LocalServer:
    """A threaded HTTP/1.1 server on `host` (a loopback address) and a free port; see the module doc."""

    def __init__(self, host: str = "127.0.0.1", *, tls: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.tls = tls
        self.requests: list[Request] = []
        self._routes: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = _Server((host, 0), _RequestHandler)
        self._httpd.owner = self
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def url(self, path: str = "/", *, host: str | None = None) -> str:
        """Absolute URL of `path`; `host` replaces the address in it (e.g. "localhost")."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    # -- routes ------------------------------------------------------------------------------------
    def respond(self, path: str, handler: Handler) -> None:
        with self._lock:
            self._routes[path] = handler

    def add(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        content_type: str | None = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
        content_length: bool | int = True,
        chunked: bool = False,
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        response = Response(status, data, content_type, dict(headers or {}), content_length, chunked)
        self.respond(path, lambda _request: response)

    def redirect(self, path: str, location: str, *, status: int = 302) -> None:
        self.add(path, b"", status=status, content_type=None, headers={"Location": location})

    def drip(
        self,
        path: str,
        body: bytes,
        *,
        interval: float = 1.0,
        content_type: str = "text/html; charset=utf-8",
        content_length: bool = True,
    ) -> None:
        chunks = [body[i : i + 1] for i in range(len(body))]
        response = Response(200, chunks, content_type, {}, content_length, False, interval)
        self.respond(path, lambda _request: response)

    def sequence(self, path: str, responses: Iterable[Response]) -> None:
        queue = list(responses)
        if not queue:
            raise ValueError("sequence needs at least one response")
        served = [0]

        def handler(_request: Request) -> Response:
            with self._lock:
                index = min(served[0], len(queue) - 1)
                served[0] += 1
            return queue[index]

        self.respond(path, handler)

    def resource(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str = "text/html; charset=utf-8",
        etag: bool = True,
        last_modified: bool = True,
    ) -> Resource:
        data = body.encode("utf-8") if isinstance(body, str) else body
        res = Resource(data, content_type=content_type, use_etag=etag, use_last_modified=last_modified)
        self.respond(path, res)
        return res

    # -- what happened -----------------------------------------------------------------------------
    def hits(self, path: str | None = None) -> int:
        """Requests received for `path` (query ignored unless given), or in all when None."""
        with self._lock:
            if path is None:
                return len(self.requests)
            return sum(1 for r in self.requests if r.path == path or r.path.split("?", 1)[0] == path)

    # -- lifetime ----------------------------------------------------------------------------------
    def close(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _dispatch(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
            handler = self._routes.get(request.path) or self._routes.get(request.path.split("?", 1)[0])
        if handler is None:
            return Response(404, b"not found", "text/plain")
        return handler(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: LocalServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up mid-response are expected (timeouts, size caps)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(send_body=False)

    def _serve(self, *, send_body: bool) -> None:
        owner = self.server.owner
        request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        response = owner._dispatch(request)
        chunks = response.chunks()
        try:
            self.send_response(response.status)
            if response.content_type:
                self.send_header("Content-Type", response.content_type)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Connection", "close")
            if response.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            elif response.content_length is True:
                self.send_header("Content-Length", str(sum(len(c) for c in chunks)))
            elif response.content_length is not False:
                self.send_header("Content-Length", str(response.content_length))
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            if not send_body or response.status in (204, 304):
                return
            for i, chunk in enumerate(chunks):
                if i and response.delay and owner._stop.wait(response.delay):
                    return
                if response.chunked:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                else:
                    self.wfile.write(chunk)
                self.wfile.flush()
            if response.chunked:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True


def self_signed_cert(directory: Path, *, dns_names: tuple[str, ...] = ("localhost",)) -> tuple[Path, Path]:
    """Write a self-signed certificate for `dns_names` (and its key) into `directory` with openssl.

    Returns (cert_path, key_path). The certificate is its own CA: trust it in a client with
    `ssl.create_default_context(cafile=cert_path)`. Raises RuntimeError when openssl is missing.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is not installed")
    cert, key = directory / "cert.pem", directory / "key.pem"
    san = ",".join(f"DNS:{name}" for name in dns_names)
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={dns_names[0]}",
            "-addext",
            f"subjectAltName={san}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A LocalServer on 127.0.0.1 for one test."""
    with LocalServer() as srv:
        yield srv

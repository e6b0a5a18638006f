"""A scripted stand-in for an OpenAI-compatible chat endpoint, for tests.

A real HTTP/1.1 server on 127.0.0.1 (stdlib `http.server`, one thread per connection) that answers
`POST /v1/chat/completions` from a queue of scripted replies and records every request.

    with OpenAIStandin() as llm:
        llm.reply_text("Acme rose [1].")           # JSON, or SSE chunks if the request asks to stream
        llm.reply_stream(["Acme", " rose [1]."])  # always SSE, one event per chunk
        llm.reply_status(500)                      # an HTTP error with an OpenAI-style error body
        llm.reply_text("late", delay=5)            # wait 5 s before answering (client timeouts)
        llm.reply_malformed_stream()               # `data: {not json`
        settings = Settings(llm_base_url=llm.base_url, llm_model="standin")
        ...
        llm.requests[0].body["messages"]          # what the client sent

With the queue empty the server answers HTTP 500 ("no scripted reply"). Delays are cut short when the
server stops, so a test never waits for them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

CHAT_PATH = "/v1/chat/completions"


@dataclass
class Reply:
    """One scripted reply.

    kind: "text" (JSON, or streamed word by word when the request has stream=true), "stream" (SSE with
    these `chunks` as content deltas), "status" (HTTP `status` with `body`), "raw" (`body` bytes as is,
    with `content_type`). `delay` seconds pass before the status line; `chunk_delay` seconds between
    streamed events. `done=False` ends a stream without `data: [DONE]` and without a finish_reason.
    """

    kind: str
    text: str = ""
    chunks: list[str] = field(default_factory=list)
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0
    chunk_delay: float = 0.0
    done: bool = True


@dataclass
class Recorded:
    """One request the stand-in received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]  # the parsed JSON body ({} if it was not JSON)
    raw: bytes

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    def message(self, role: str) -> str:
        """The content of the first message with `role` ("" if none)."""
        return next((str(m.get("content", "")) for m in self.messages if m.get("role") == role), "")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    standin: OpenAIStandin


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send_json(200, {"object": "list", "data": [{"id": "standin", "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        standin = self.server.standin
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        standin._record(Recorded("POST", self.path, {k: v for k, v in self.headers.items()},
                                 body if isinstance(body, dict) else {}, raw))
        if self.path.rstrip("/") != CHAT_PATH:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        reply = standin._next()
        if reply is None:
            self._send_json(500, {"error": {"message": "standin: no scripted reply", "type": "server_error"}})
            return
        if reply.delay and standin._stopping.wait(reply.delay):
            return
        try:
            self._play(reply, body.get("stream") is True, str(body.get("model") or "standin"))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. timed out)

    def _play(self, reply: Reply, wants_stream: bool, model: str) -> None:
        if reply.kind == "status":
            body = reply.body or json.dumps(
                {"error": {"message": f"standin error {reply.status}", "type": "server_error"}}
            ).encode()
            self._send_bytes(reply.status, body, reply.content_type)
        elif reply.kind == "raw":
            self._send_bytes(reply.status, reply.body, reply.content_type)
        elif reply.kind == "text" and not wants_stream:
            self._send_json(200, completion(reply.text, model))
        else:
            chunks = reply.chunks if reply.kind == "stream" else _words(reply.text)
            events = [stream_event(c, model) for c in chunks]
            if reply.done:
                events += [stream_event("", model, finish_reason="stop"), b"data: [DONE]\n\n"]
            self._send_stream(events, reply.chunk_delay)

    def _send_json(self, status: int, data: dict[str, Any]) -> None:
        self._send_bytes(status, json.dumps(data).encode(), "application/json")

    def _send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def _send_stream(self, events: list[bytes], chunk_delay: float) -> None:
        """Send `events` as a chunked text/event-stream, flushing each one."""
        stopping = self.server.standin._stopping
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        for i, event in enumerate(events):
            if i and chunk_delay and stopping.wait(chunk_delay):
                break
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True


def _words(text: str) -> list[str]:
    """`text` cut into word-sized deltas that concatenate back to it."""
    parts: list[str] = []
    for i, word in enumerate(text.split(" ")):
        parts.append(word if i == 0 else " " + word)
    return [p for p in parts if p] or [text]


def completion(text: str | None, model: str = "standin") -> dict[str, Any]:
    """A non-streamed chat.completion object whose message content is `text`."""
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def stream_event(delta: str, model: str = "standin", finish_reason: str | None = None) -> bytes:
    """One `data: {...}` chat.completion.chunk event carrying `delta` as content."""
    chunk = {
        "id": "chatcmpl-standin",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": {"content": delta} if delta else {}, "finish_reason": finish_reason}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


class OpenAIStandin:
    """The stand-in server. Start with `start()` or a `with` block; `base_url` ends in `/v1`."""

    def __init__(self) -> None:
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[Recorded] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---
    def start(self) -> OpenAIStandin:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.standin = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="openai-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def __enter__(self) -> OpenAIStandin:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "standin not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- scripting ---
    def enqueue(self, reply: Reply) -> None:
        with self._lock:
            self._replies.append(reply)

    def reply_text(self, text: str | None, *, delay: float = 0.0, chunk_delay: float = 0.0) -> None:
        """Answer with `text`: a JSON completion, or word-sized SSE deltas if the request streams.
        `text=None` sends `content: null`."""
        if text is None:
            self.enqueue(Reply("raw", body=json.dumps(completion(None)).encode(), delay=delay))
        else:
            self.enqueue(Reply("text", text=text, delay=delay, chunk_delay=chunk_delay))

    def reply_stream(self, chunks: list[str], *, chunk_delay: float = 0.0, delay: float = 0.0,
                     done: bool = True) -> None:
        """Answer with an SSE stream of these content deltas (then a finish event and [DONE] if `done`)."""
        self.enqueue(Reply("stream", chunks=list(chunks), chunk_delay=chunk_delay, delay=delay, done=done))

    def reply_status(self, status: int, body: bytes = b"", *, delay: float = 0.0) -> None:
        """Answer with HTTP `status` and `body` (default: an OpenAI-style error object)."""
        self.enqueue(Reply("status", status=status, body=body, delay=delay))

    def reply_raw(self, body: bytes, *, status: int = 200, content_type: str = "application/json",
                  delay: float = 0.0) -> None:
        """Answer with these bytes as they are (malformed JSON, odd content types...)."""
        self.enqueue(Reply("raw", body=body, status=status, content_type=content_type, delay=delay))

    def reply_malformed_stream(self) -> None:
        """A text/event-stream whose second event is not JSON."""
        body = stream_event("Acme") + b"data: {this is not json\n\n" + b"data: [DONE]\n\n"
        self.enqueue(Reply("raw", body=body, content_type="text/event-stream"))

    def pending(self) -> int:
        """Scripted replies not yet used."""
        with self._lock:
            return len(self._replies)

    # --- used by the handler ---
    def _next(self) -> Reply | None:
        with self._lock:
            return self._replies.popleft() if self._replies else None

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

"""The HTTP client for `POST {llm_base_url}/chat/completions`, plain or streamed (server-sent events),
standard library only: one deadline covers the connect and the whole reply, and every failure is an
`LLMError` with a short reason (the API key is never logged)."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit

from newsbot.bot.config import Settings

log = logging.getLogger("newsbot.llm")

MAX_REPLY_BYTES = 2_000_000  # largest response body accepted from the endpoint, in bytes

Message = dict[str, str]


class LLMError(Exception):
    """The model call failed. `str(err)` is a short reason ("HTTP 500", "timeout after 60 s", ...);
    `detail` holds extra text for logs (e.g. the start of an error body), never the API key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


# --------------------------------------------------------------------------------------------------
# HTTP client
# --------------------------------------------------------------------------------------------------


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


class _Deadline:
    """Wall-clock budget for one request: `seconds` for the connect and for the whole reply."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left; raises LLMError when none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise LLMError(f"timeout after {_fmt_seconds(self.seconds)}")
        return left


class _Request:
    """One open chat-completions request: a connection, its response and the deadline."""

    def __init__(self, settings: Settings, body: dict[str, Any]) -> None:
        self.deadline = _Deadline(settings.llm_timeout)
        base = settings.llm_base_url.strip().rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LLMError("bad llm_base_url", f"expected http(s)://host[:port]/path, got {base!r}")
        path = (parts.path.rstrip("/") or "") + "/chat/completions"
        timeout = self.deadline.remaining()
        if parts.scheme == "https":
            self.conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if body.get("stream") else "application/json",
            "User-Agent": "newsbot",
        }
        if settings.llm_api_key:
            headers["Authorization"] = f"Bearer {settings.llm_api_key}"
        log.debug("POST %s://%s%s model=%s stream=%s", parts.scheme, parts.netloc, path,
                  body.get("model"), bool(body.get("stream")))
        payload = json.dumps(body).encode("utf-8")
        self.sock: socket.socket | None = None
        try:
            self.conn.request("POST", path, body=payload, headers=headers)
            # http.client drops conn.sock once a "Connection: close" response is read; keep our own
            # handle so every later read gets the remaining time, not a fresh full timeout.
            self.sock = self.conn.sock
            self._settimeout()
            self.response = self.conn.getresponse()
        except Exception as exc:
            self.close()
            self._reraise(exc)
        if self.response.status >= 400:
            detail = ""
            try:
                detail = self.read_body(limit=2000).decode("utf-8", "replace")
            except LLMError:
                pass
            self.close()
            raise LLMError(f"HTTP {self.response.status}", _error_message(detail))

    def _settimeout(self) -> None:
        """Give the next socket operation only the time left of the deadline."""
        left = self.deadline.remaining()
        if self.sock is not None:
            self.sock.settimeout(left)

    def _reraise(self, exc: Exception) -> NoReturn:
        """Raise `exc` as an LLMError when it is a network error, else unchanged."""
        if isinstance(exc, LLMError):
            raise exc
        if isinstance(exc, TimeoutError):
            raise LLMError(f"timeout after {_fmt_seconds(self.deadline.seconds)}") from exc
        if isinstance(exc, ConnectionRefusedError | socket.gaierror):
            raise LLMError("cannot connect to the model endpoint", f"{type(exc).__name__}: {exc}") from exc
        if isinstance(exc, http.client.IncompleteRead):
            raise LLMError("reply cut off", str(exc)) from exc
        if isinstance(exc, OSError | http.client.HTTPException):
            raise LLMError("connection error", f"{type(exc).__name__}: {exc}") from exc
        raise exc

    def read_chunk(self) -> bytes:
        """The next piece of the body (b"" at the end), within the deadline."""
        try:
            self._settimeout()
            return self.response.read1(65536)
        except Exception as exc:
            self._reraise(exc)

    def read_body(self, limit: int = MAX_REPLY_BYTES) -> bytes:
        """The whole body, at most `limit` bytes, within the deadline."""
        data = bytearray()
        while chunk := self.read_chunk():
            data += chunk
            if len(data) > limit:
                if limit < MAX_REPLY_BYTES:
                    return bytes(data[:limit])
                raise LLMError("reply too large", f"more than {limit} bytes")
        return bytes(data)

    def lines(self) -> Iterator[str]:
        """The body as text lines (without line endings), read progressively."""
        buf = b""
        total = 0
        while chunk := self.read_chunk():
            total += len(chunk)
            if total > MAX_REPLY_BYTES:
                raise LLMError("reply too large", f"more than {MAX_REPLY_BYTES} bytes")
            buf += chunk
            *complete, buf = buf.split(b"\n")
            for raw in complete:
                yield raw.rstrip(b"\r").decode("utf-8", "replace")
        if buf:
            yield buf.rstrip(b"\r").decode("utf-8", "replace")

    def close(self) -> None:
        try:
            if getattr(self, "response", None) is not None:
                self.response.close()
            self.conn.close()
        except OSError:
            pass


def _error_message(body: str) -> str:
    """The `error.message` of an OpenAI-style error body, else the body's start (for logs)."""
    try:
        data = json.loads(body)
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
    except ValueError:
        pass
    return body.strip()[:300]


def _request_body(settings: Settings, messages: Sequence[Message], max_tokens: int | None, stream: bool,
                  temperature: float) -> dict[str, Any]:
    return {
        "model": settings.llm_model,
        "messages": list(messages),
        "max_tokens": max_tokens if max_tokens is not None else settings.llm_max_tokens,
        "temperature": temperature,
        "stream": stream,
    }


def _message_content(data: Any) -> str:
    """`choices[0].message.content` of a non-streamed reply; LLMError when malformed or empty."""
    if isinstance(data, dict) and isinstance(data.get("error"), dict | str):
        raise LLMError("model error", _error_message(json.dumps(data)))
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LLMError("malformed reply", "no choices[0].message.content") from None
    if content is not None and not isinstance(content, str):
        raise LLMError("malformed reply", "content is not a string")
    if not content or not content.strip():
        raise LLMError("empty reply")
    return content


def chat(settings: Settings, messages: Sequence[Message], *, max_tokens: int | None = None,
         temperature: float = 0.0) -> str:
    """One non-streamed chat completion; returns the reply text.

    `max_tokens` (model tokens) defaults to settings.llm_max_tokens. The connect and the whole reply
    must finish within settings.llm_timeout seconds. Raises LLMError on HTTP errors, timeouts,
    connection errors, malformed JSON and empty replies.
    """
    req = _Request(settings, _request_body(settings, messages, max_tokens, False, temperature))
    try:
        raw = req.read_body()
    finally:
        req.close()
    try:
        data = json.loads(raw)
    except ValueError:
        raise LLMError("malformed JSON reply", raw[:200].decode("utf-8", "replace")) from None
    return _message_content(data)


def chat_stream(settings: Settings, messages: Sequence[Message], *, max_tokens: int | None = None,
                temperature: float = 0.0) -> Iterator[str]:
    """A streamed chat completion: yields the text deltas as they arrive (non-empty strings).

    Parses server-sent events (`data: {...}` lines ending with `data: [DONE]`). A server that ignores
    `stream` and answers with plain JSON is accepted (one delta). The connect and the whole stream
    must finish within settings.llm_timeout seconds. Raises LLMError on HTTP errors, timeouts,
    malformed events, a stream cut off before `[DONE]`/`finish_reason`, and a stream with no text.
    Closing the generator early closes the connection.
    """
    req = _Request(settings, _request_body(settings, messages, max_tokens, True, temperature))
    try:
        ctype = (req.response.getheader("Content-Type") or "").lower()
        if "application/json" in ctype:
            raw = req.read_body()
            try:
                data = json.loads(raw)
            except ValueError:
                raise LLMError("malformed JSON reply", raw[:200].decode("utf-8", "replace")) from None
            yield _message_content(data)
            return
        got_text = False
        finished = False
        for payload in _sse_data(req.lines()):
            if payload.strip() == "[DONE]":
                finished = True
                break
            delta, done = _stream_delta(payload)
            finished = finished or done
            if delta:
                got_text = got_text or bool(delta.strip())
                yield delta
        if not finished:
            raise LLMError("malformed stream", "the stream ended without [DONE] or a finish_reason")
        if not got_text:
            raise LLMError("empty reply")
    finally:
        req.close()


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The payload of each `data:` line of a server-sent-event stream.

    Each data line is taken as one event (OpenAI-style streams never split JSON across lines), so a
    server that omits the blank separator lines still works. Comments, blank lines and `event:`/`id:`/
    `retry:` fields are skipped; any other line makes the stream malformed.
    """
    for line in lines:
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            yield value[1:] if value.startswith(" ") else value
        elif name not in ("event", "id", "retry"):
            raise LLMError("malformed stream", f"unexpected line {line[:100]!r}")


def _stream_delta(payload: str) -> tuple[str, bool]:
    """(text delta, finished?) of one streamed event's JSON; LLMError when malformed."""
    try:
        data = json.loads(payload)
    except ValueError:
        raise LLMError("malformed stream", f"bad event JSON {payload[:100]!r}") from None
    if not isinstance(data, dict):
        raise LLMError("malformed stream", "event is not an object")
    if data.get("error"):
        raise LLMError("model error", _error_message(payload))
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise LLMError("malformed stream", "event without choices")
    if not choices:  # e.g. a final usage-only event
        return "", False
    choice = choices[0]
    if not isinstance(choice, dict):
        raise LLMError("malformed stream", "choice is not an object")
    delta = choice.get("delta") or {}
    if not isinstance(delta, dict):
        raise LLMError("malformed stream", "delta is not an object")
    content = delta.get("content") or ""
    if not isinstance(content, str):
        raise LLMError("malformed stream", "delta content is not a string")
    return content, bool(choice.get("finish_reason"))


# --------------------------------------------------------------------------------------------------
# Prompt

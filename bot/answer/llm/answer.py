"""`llm_answer`: the prompt, the model call (streamed to `on_text` when given) and the check, or the
reason the caller should fall back to the extractive answer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from newsbot.bot.answer.answers import Answer
from newsbot.bot.answer.llm.check import check_answer, visible_text
from newsbot.bot.answer.llm.client import LLMError, Message, chat, chat_stream
from newsbot.bot.answer.llm.prompt import build_messages
from newsbot.bot.config import Settings, llm_enabled
from newsbot.index.hits import Hit

log = logging.getLogger("newsbot.llm")

def llm_answer(question: str, hits: Sequence[Hit], settings: Settings, *,
               on_text: Callable[[str], None] | None = None) -> tuple[Answer | None, str | None]:
    """Answer `question` from `hits` with the model: (answer, None), or (None, reason) to fall back.

    With `on_text` the reply is streamed and `on_text` receives the ACCUMULATED visible text so far
    (raw model text, `<think>` blocks removed, citations not yet checked) each time it grows; it is
    called from this thread, and rate-limiting message edits is the caller's job. An exception in
    `on_text` is logged once and further calls are skipped. The final, checked text is in the answer.
    Fallback reasons ("timeout after 60 s", "HTTP 500", "malformed stream", "empty reply",
    "no valid citations", ...) are also logged at WARNING on logger "newsbot.llm".
    """
    answer: Answer | None = None
    reason: str | None = None
    if not llm_enabled(settings):
        reason = "no model configured"
    elif not hits:
        reason = "no passages"
    else:
        messages, included = build_messages(question, hits, settings)
        if not included:
            reason = "passages do not fit llm_context_tokens"
        else:
            try:
                raw = _stream_text(settings, messages, on_text) if on_text else chat(settings, messages)
            except LLMError as exc:
                reason = exc.reason
                if exc.detail:
                    log.info("model call failed: %s (%s)", exc.reason, exc.detail)
            else:
                if not visible_text(raw):
                    reason = "empty reply"
                else:
                    answer = check_answer(question, raw, included, settings, all_hits=hits)
                    if answer is None:
                        reason = "no valid citations"
    if reason is not None:
        log.warning("model answer falls back to extractive: %s", reason)
    return answer, reason


def _stream_text(settings: Settings, messages: Sequence[Message], on_text: Callable[[str], None]) -> str:
    """Stream a reply, calling `on_text(accumulated visible text)` whenever it changes; return raw text."""
    raw = ""
    shown = ""
    callback_ok = True
    for delta in chat_stream(settings, messages):
        raw += delta
        now = visible_text(raw)
        if callback_ok and now and now != shown:
            shown = now
            try:
                on_text(now)
            except Exception:
                log.exception("on_text callback failed; no more progress updates for this answer")
                callback_ok = False
    return raw

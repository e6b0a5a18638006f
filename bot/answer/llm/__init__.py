"""The optional language-model answer path, for any OpenAI-compatible chat endpoint.

Works with OpenAI, llama.cpp server, Ollama, vLLM and LM Studio: everything goes through
`POST {llm_base_url}/chat/completions`, plain or streamed (server-sent events). Only the standard
library is used for HTTP.

Flow: `build_messages` numbers the retrieved passages [1]..[k] inside `<passage id="n">` tags (quoted
data, never instructions) within the `llm_context_tokens` budget; the model answers citing `[n]`;
`check_answer` keeps only sentences whose citations point at a passage that was shown, renumbers them
per article and builds an `Answer` (mode "llm"). `llm_answer` ties it together and returns a reason
instead of an answer whenever the caller should fall back to the extractive answer.

All functions block; call them from a worker thread (e.g. `asyncio.to_thread`) in async code. The API
key is sent as `Authorization: Bearer <key>` only when set, and is never logged.

    client.py   the HTTP client: chat (one reply) and chat_stream (server-sent events), LLMError
    prompt.py   the system prompt and the passages, numbered, within the token budget
    check.py    the model's reply turned into a checked Answer, or None to fall back
    answer.py   llm_answer: prompt, call, check (or the reason to fall back)
    rewrite.py  a follow-up question rewritten by the model into a standalone one
"""

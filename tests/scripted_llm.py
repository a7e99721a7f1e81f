"""A scripted OpenAI-compatible chat server for tests: a real HTTP server on 127.0.0.1 that replies what it is told.

llama.cpp cannot be made to attack on demand; this server can. It streams a scripted reply (Server-Sent Events, as
the OpenAI API does), or answers with an HTTP error, and records the requests it got.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "scripted"
# A reply may name a source by title: "{n:MaxViT}" becomes the number the prompt gave the source whose title
# starts with "MaxViT" (so a correct citation does not depend on the retrieval order).
_SOURCE_REF = re.compile(r"\{n:([^}]+)\}")
_PROMPT_SOURCE = re.compile(r"<source id=(\d+)>\s*Title: ([^\n]*)")


@dataclass
class Script:
    """What the server does with the next chat requests."""

    reply: str = ""
    status: int = 200  # another status answers with an OpenAI-style error whose message is `error_message`
    error_message: str = ""
    delay: float = 0.0  # seconds between streamed pieces


@dataclass
class ScriptedLLM:
    """The running server: `base_url` for RAG_OPENAI_BASE_URL, `script` to change, `requests` received."""

    script: Script = field(default_factory=Script)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL of the server."""
        assert self._server is not None, "the server is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedLLM:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def reply_for(self, body: dict[str, Any]) -> str:
        """The scripted reply with {n:Title} references resolved against the prompt's numbered sources."""
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        numbers = {title.strip(): n for n, title in _PROMPT_SOURCE.findall(prompt)}

        def number(match: re.Match[str]) -> str:
            wanted = match.group(1)
            return next((n for title, n in numbers.items() if title.startswith(wanted)), "9")

        return _SOURCE_REF.sub(number, self.script.reply)


def _pieces(text: str) -> list[str]:
    """The reply in small streamed pieces (a few characters each, cutting inside words and markers)."""
    return [text[i : i + 7] for i in range(0, len(text), 7)] or [""]


def _handler(server: ScriptedLLM) -> Callable[..., BaseHTTPRequestHandler]:
    """A request handler class bound to one ScriptedLLM."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "tests"}]})

        def do_POST(self) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (deadline tests)
                self._chat()

        def _chat(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            server.requests.append(body)
            server.headers.append(dict(self.headers))
            script = server.script
            if script.status != 200:
                self._json(script.status, {"error": {"message": script.error_message, "type": "invalid_request_error"}})
                return
            reply = server.reply_for(body)
            created = int(time.time())
            if not body.get("stream"):
                self._json(200, {
                    "id": "chatcmpl-scripted", "object": "chat.completion", "created": created, "model": MODEL,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": len(reply.split()), "total_tokens": 10},
                })  # fmt: skip
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            for i, piece in enumerate(_pieces(reply)):
                delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
                self._event({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": created,
                             "model": MODEL, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                time.sleep(script.delay)
            self._event({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": created,
                         "model": MODEL, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def _event(self, payload: dict[str, Any]) -> None:
            self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

    return Handler


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

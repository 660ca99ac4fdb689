"""Local stand-ins for outside services: any HTTP server in a thread, and Telegram's Bot API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StandIn:
    """A local HTTP server in a thread; *handler* answers (status, content type, body)."""

    def __init__(self, handler):
        calls = self.calls = []

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                calls.append((self.command, self.path, dict(self.headers), body))
                status, ctype, out = handler(self.command, self.path, self.headers, body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class BotAPI:
    """Telegram's sendMessage and sendAudio, enough to check what the hub posts."""

    def __init__(self, fail_first_audio: bool = True):
        self.messages, self.audios = [], []
        self.fail_audio = fail_first_audio
        self.next_id = 100

    def __call__(self, method, path, headers, body):
        from email.parser import BytesParser
        from urllib.parse import parse_qs

        def ok(result):
            return 200, "application/json", json.dumps({"ok": True, "result": result}).encode()

        if method != "POST":
            return 404, "application/json", b'{"ok": false}'
        self.next_id += 1
        if path.endswith("/sendMessage"):
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            self.messages.append(form)
            return ok({"message_id": self.next_id, "chat": {"id": form["chat_id"]}})
        if path.endswith("/sendAudio"):
            if self.fail_audio:
                self.fail_audio = False
                return 502, "application/json", b'{"ok": false, "error_code": 502, "description": "Bad Gateway"}'
            msg = BytesParser().parsebytes(b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body)
            parts = {p.get_param("name", header="content-disposition"): p for p in msg.get_payload()}
            self.audios.append({"chat_id": parts["chat_id"].get_payload(),
                                "size": len(parts["audio"].get_payload(decode=True)),
                                "caption": parts["caption"].get_payload(decode=True).decode()})
            return ok({"message_id": self.next_id})
        return 404, "application/json", b'{"ok": false, "description": "Not Found"}'

"""One address in front of several workers, for the browser test: each request to /ui/ goes
to the next worker in turn (no stickiness, as a plain load balancer), the Host header kept;
it records which worker served which path."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class RoundRobin:
    def __init__(self, upstreams: list[str]) -> None:
        self.upstreams = upstreams
        self.served: list[tuple[str, str]] = []  # (path, upstream) of each /ui request
        self._turn = 0
        self._lock = threading.Lock()
        balancer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                balancer.relay(self)

            def do_POST(self) -> None:
                balancer.relay(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> RoundRobin:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _pick(self, path: str) -> str:
        if not path.startswith("/ui/"):  # the browser's /favicon.ico: not counted
            return self.upstreams[0]
        with self._lock:
            upstream = self.upstreams[self._turn % len(self.upstreams)]
            self._turn += 1
            self.served.append((path, upstream))
        return upstream

    def relay(self, handler: BaseHTTPRequestHandler) -> None:
        upstream = urlsplit(self._pick(handler.path))
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        connection = http.client.HTTPConnection(upstream.netloc, timeout=60)
        try:
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
            content = response.read()
            handler.send_response(response.status, response.reason)
            for name, value in response.getheaders():  # every Set-Cookie kept
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(content)))
            handler.end_headers()
            handler.wfile.write(content)
        finally:
            connection.close()

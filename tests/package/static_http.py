"""A web server on 127.0.0.1 serving fixed bodies by path, recording what it was asked.

For grype's database listing (latest.json) and archives: nothing leaves the machine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Site:
    url: str  # http://127.0.0.1:PORT, no trailing slash
    bodies: dict[str, bytes]  # path -> body; any other path is a 404
    asked: list[str] = field(default_factory=list)


@contextmanager
def serve(bodies: dict[str, bytes]) -> Iterator[Site]:
    site = Site("", bodies)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.asked.append(self.path)
            body = site.bodies.get(self.path)
            self.send_response(404 if body is None else 200)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()

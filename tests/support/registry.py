"""A real OCI registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRegistry:
    """Start, stop and restart a registry; storage survives restarts."""

    def __init__(self, root: Path, port: int | None = None, login: tuple[str, str] | None = None):
        self.root = root
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.login = login
        self.proc: subprocess.Popen | None = None

    def _config(self) -> Path:
        auth = ""
        if self.login:
            import bcrypt

            user, password = self.login
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text(f"{user}:{hashed}\n")
            auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n"
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n" + auth
        )
        return config

    def start(self) -> LocalRegistry:
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / "registry.log").open("ab")
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(self._config())], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://{self.host}/v2/", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"registry on {self.host} did not start; see {self.root}/registry.log")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def tags(self, repo: str) -> list[str]:
        resp = requests.get(f"http://{self.host}/v2/{repo}/tags/list", timeout=5, auth=self.login)
        if resp.status_code == 404:
            return []
        return resp.json().get("tags") or []

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FaultProxy:
    """A loopback proxy to a registry, for injecting registry faults.

    - `refuse_referrers`: manifests carrying `subject` get HTTP 400 (a registry
      that rejects OCI 1.1 referrers);
    - `die_after(predicate)`: once a request matches, every later request finds
      the registry gone (connection closed), as if it stopped mid-run;
      `revive()` brings it back.
    """

    def __init__(self, upstream: str, refuse_referrers: bool = False) -> None:
        import http.server
        import threading

        self.upstream, self.refuse_referrers = upstream, refuse_referrers
        self.dead = False
        self._trigger = None
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                if proxy.dead:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if (
                    proxy.refuse_referrers
                    and self.command == "PUT"
                    and body
                    and b'"subject"' in body
                ):
                    self._reply(
                        400,
                        b'{"errors":[{"code":"MANIFEST_INVALID","message":"no referrers here"}]}',
                    )
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                resp = requests.request(
                    self.command,
                    f"http://{upstream}{self.path}",
                    data=body,
                    headers=headers,
                    timeout=30,
                    allow_redirects=False,
                )
                self.send_response(resp.status_code)
                for key, value in resp.headers.items():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        if key.lower() == "location":
                            value = value.replace(upstream, proxy.host)
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.content)
                if proxy._trigger and proxy._trigger(self.command, self.path):
                    proxy.dead = True

            def _reply(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda *args: None  # dropped connections are the point
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def die_after(self, predicate) -> None:
        self._trigger = predicate

    def revive(self) -> None:
        self.dead, self._trigger = False, None

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

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

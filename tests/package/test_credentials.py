"""Credentials reach only the host they belong to, and no message prints one.

Registries, token services and GitHub API doubles listen on loopback
addresses: 127.0.0.1 and 127.0.0.2 are distinct hosts that are both this
machine, and `*.example.test` is resolved to 127.0.0.1 inside the test only,
to stand for a host that is not loopback. The https rule is decided from the
URL alone (hosts.withheld_from, pins.token_goes_to) and tested as a table;
the wire is checked end to end over plain http to loopback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from package_helpers import run_invoke

from kairos_distro import artifacts, pins, sign, signing
from kairos_distro.hosts import redact, site, withheld_from
from kairos_distro.registry import PASSWORD_ENV, USER_ENV, Registry, RegistryError
from kairos_distro.runner import Runner, Skip, StepError

USER, PASSWORD = "kdt", "canary-pa55-7f3e91"  # the password must never be printed
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
TOKEN = "canary-bearer-5b2a0c"  # what the token service issues for the login
GITHUB_TOKEN = "canary-ghp-1d9e4f"
CANARIES = (PASSWORD, BASIC.split()[1], TOKEN, GITHUB_TOKEN)
DIGEST = "sha256:" + "c" * 64
DIGEST_OF_BODY = "sha256:" + hashlib.sha256(b"{}").hexdigest()  # what a GET hashes to
REPO = "kairos/base"
NEEDS_LOGIN = f"needs a login ({USER_ENV}/{PASSWORD_ENV} or docker login)"


class Stub(ThreadingHTTPServer):
    """A registry (or a token service, or an upload host) that records what reached it."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        super().__init__((address, 0), StubHandler)
        self.seen: list[tuple[str, str, str]] = []  # method, path, Authorization
        self.challenge = ""  # WWW-Authenticate for a request it does not accept
        self.accept = {BASIC, f"Bearer {TOKEN}"}
        self.token_service = False
        self.location = ""  # where an upload goes
        self.echo = False  # hostile: every error repeats the Authorization it got
        self.github = False  # a GitHub API: k3s's release list (empty), 404 for the rest

    @property
    def host(self) -> str:
        return f"{self.server_address[0]}:{self.server_address[1]}"

    def authorizations(self) -> list[str]:
        return [auth for _, _, auth in self.seen if auth]


class StubHandler(BaseHTTPRequestHandler):
    server: Stub

    def _reply(self, status: int, body: object = None, **headers: str) -> None:
        data = json.dumps(body or {}).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _answer(self) -> None:
        srv, auth = self.server, self.headers.get("Authorization", "")
        srv.seen.append((self.command, self.path, auth))
        if srv.token_service:
            return self._reply(200, {"token": TOKEN if auth == BASIC else "anonymous"})
        if srv.github:
            return self._reply(200 if self.path.startswith("/repos/k3s-io/k3s/") else 404, [])
        if srv.challenge and (auth not in srv.accept or srv.echo):
            said = f"authentication required {auth} {PASSWORD}" if srv.echo else "no entry"
            error = {"errors": [{"code": "UNAUTHORIZED", "message": said}]}
            return self._reply(401, error, **{"WWW-Authenticate": srv.challenge})
        if self.command == "POST":
            return self._reply(202, Location=srv.location)
        if "/blobs/" in self.path and self.command == "HEAD":
            return self._reply(404)
        return self._reply(
            201 if self.command == "PUT" else 200, **{"Docker-Content-Digest": DIGEST}
        )

    do_GET = do_HEAD = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stubs() -> Iterator[Callable[[str], Stub]]:
    """stubs(address) -> a started Stub; all stop at the end of the test."""
    started: list[Stub] = []

    def start(address: str = "127.0.0.1") -> Stub:
        server = Stub(address)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No login, token or proxy of this machine; `*.example.test` is 127.0.0.1 here only."""
    for name in (USER_ENV, PASSWORD_ENV, "GITHUB_TOKEN", "GITHUB_API_URL", pins.GITHUB_API_ENV):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    real = socket.getaddrinfo

    def resolve(host, *args, **kw):  # type: ignore[no-untyped-def]
        return real("127.0.0.1" if str(host).endswith(".example.test") else host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def docker_login(tmp_path: Path, key: str) -> None:
    """A `docker login` stored under `key`, as docker's config.json keeps it."""
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (tmp_path / "docker").mkdir(exist_ok=True)
    (tmp_path / "docker" / "config.json").write_text(json.dumps({"auths": {key: {"auth": auth}}}))


def no_canary(*texts: str) -> None:
    for text in texts:
        assert not any(canary in text for canary in CANARIES), text


# -- the registry's own login: env for release.yaml's registry, docker's per host ----------------
# (where the login is, which registry release.yaml names, the challenge)
#   -> did the login reach the registry or its token service, the one line printed ("" = ok)
REALMS = {
    "basic": "",
    "realm on the registry's host": "http://127.0.0.1:{token_port}/token",
    "realm on another loopback address": "http://127.0.0.2:{token_port}/token",
    "realm on localhost": "http://localhost:{token_port}/token",
    "realm on a plain-http name": "http://auth.example.test:{token_port}/token",
}
WITHHELD = (
    "registry {reg} refused manifest kairos/base:1: HTTP 401 "
    "(the login for {reg} was not sent to its token service: {why})"
)


@pytest.mark.parametrize(
    "login, owner, challenge, reached, line",
    [
        ("env", "{reg}", "basic", True, ""),
        ("env", "ghcr.io", "basic", False, "registry {reg} " + NEEDS_LOGIN),
        ("env", "", "basic", False, "registry {reg} " + NEEDS_LOGIN),
        ("docker {reg}", "", "basic", True, ""),
        ("docker http://{reg}/v2/", "", "basic", True, ""),
        ("docker {reg}0", "", "basic", False, "registry {reg} " + NEEDS_LOGIN),
        ("docker 127.0.0.1", "", "basic", False, "registry {reg} " + NEEDS_LOGIN),
        ("env", "{reg}", "realm on the registry's host", True, ""),
        ("docker {reg}", "", "realm on the registry's host", True, ""),
        (
            "env",
            "ghcr.io",
            "realm on the registry's host",
            False,
            "registry {reg} refused manifest kairos/base:1: HTTP 401",  # HEAD: no body
        ),
        (
            "env",
            "{reg}",
            "realm on another loopback address",
            False,
            WITHHELD.replace("{why}", "127.0.0.2 is not on 127.0.0.1"),
        ),
        (
            "docker {reg}",
            "",
            "realm on localhost",
            False,
            WITHHELD.replace("{why}", "localhost is not on 127.0.0.1"),
        ),
        (
            "env",
            "{reg}",
            "realm on a plain-http name",
            False,
            WITHHELD.replace("{why}", "auth.example.test is plain http"),
        ),
    ],
)
def test_a_login_reaches_its_own_host_only(
    stubs, monkeypatch, tmp_path, capsys, login, owner, challenge, reached, line
) -> None:
    reg, tokens = stubs("127.0.0.1"), stubs("127.0.0.2" if "another" in challenge else "127.0.0.1")
    tokens.token_service = True
    realm = REALMS[challenge].format(token_port=tokens.server_address[1])
    reg.challenge = f'Bearer realm="{realm}",service="test"' if realm else 'Basic realm="test"'
    if login == "env":
        monkeypatch.setenv(USER_ENV, USER)
        monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    else:
        docker_login(tmp_path, login.removeprefix("docker ").format(reg=reg.host))
    registry = Registry(reg.host, login=owner.format(reg=reg.host))
    try:
        assert registry.manifest_digest(REPO, "1") == DIGEST
        printed = ""
    except RegistryError as err:
        printed = str(err)
    sent = [*reg.authorizations(), *tokens.authorizations()]
    assert (BASIC in sent) is reached
    assert printed == line.format(reg=reg.host)
    no_canary(printed, *capsys.readouterr())


@pytest.mark.parametrize(
    "owner, reached, line",
    [
        ("{reg}", True, "{reg}/kairos/base@" + DIGEST_OF_BODY),
        ("ghcr.io", False, "registry {reg} " + NEEDS_LOGIN),
        ("docker.io", False, "registry {reg} " + NEEDS_LOGIN),
    ],
)
def test_verify_image_elsewhere_gets_no_release_login(
    stubs, monkeypatch, owner, reached, line
) -> None:
    """`invoke verify --image OTHER`: the release's login goes to its own registry only."""
    reg = stubs()
    reg.challenge = 'Basic realm="test"'
    monkeypatch.setenv(USER_ENV, USER)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    monkeypatch.setattr(signing.sign, "verify_image", lambda *args: None)  # signatures: not here
    image = f"{reg.host}/{REPO}:1"
    try:
        printed = signing.verify_reference(Runner(), None, image, owner.format(reg=reg.host))
    except RegistryError as err:
        printed = str(err)
    assert printed == line.format(reg=reg.host)
    assert (BASIC in reg.authorizations()) is reached


def test_an_upload_elsewhere_gets_no_authorization(stubs, monkeypatch) -> None:
    """A registry may send an upload to another host: the login stays with the registry."""
    reg, elsewhere = stubs("127.0.0.1"), stubs("127.0.0.2")
    reg.challenge, elsewhere.challenge = 'Basic realm="test"', ""
    reg.location = f"http://{elsewhere.host}/upload/1"
    monkeypatch.setenv(USER_ENV, USER)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    Registry(reg.host, login=reg.host).push_bytes(REPO, b"layer", "application/octet-stream")
    assert BASIC in reg.authorizations()
    assert [m for m, _, _ in elsewhere.seen] == ["PUT"] and elsewhere.authorizations() == []


@pytest.mark.parametrize("challenge", ["basic", "realm on the registry's host"])
def test_a_registry_that_echoes_the_login_has_it_masked(stubs, monkeypatch, challenge) -> None:
    reg, tokens = stubs(), stubs()
    tokens.token_service, reg.echo = True, True
    realm = REALMS[challenge].format(token_port=tokens.server_address[1])
    reg.challenge = f'Bearer realm="{realm}"' if realm else 'Basic realm="test"'
    monkeypatch.setenv(USER_ENV, USER)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    with pytest.raises(RegistryError) as caught:
        Registry(reg.host, login=reg.host).get_manifest(REPO, "1")
    scheme = "Bearer" if realm else "Basic"
    assert str(caught.value) == (
        f"registry {reg.host} refused manifest kairos/base:1: "
        f"UNAUTHORIZED authentication required {scheme} *** ***"
    )


# -- where a token service may get the login: https (or loopback), the registry's site -----------
@pytest.mark.parametrize(
    "realm, registry, why",
    [
        ("https://ghcr.io/token", "ghcr.io", ""),
        ("https://auth.docker.io/token", "registry-1.docker.io", ""),
        ("https://gitlab.com/jwt/auth", "registry.gitlab.com", ""),
        ("https://quay.io/v2/auth", "quay.io", ""),
        ("https://gitlab.example.co.uk/jwt/auth", "registry.example.co.uk:5050", ""),
        ("http://127.0.0.1:5001/token", "127.0.0.1:5000", ""),
        ("http://[::1]:5001/token", "[::1]:5000", ""),
        ("http://auth.docker.io/token", "registry-1.docker.io", "auth.docker.io is plain http"),
        ("https://evil.io/token", "ghcr.io", "evil.io is not on ghcr.io"),
        ("https://ghcr.io.evil.io/token", "ghcr.io", "ghcr.io.evil.io is not on ghcr.io"),
        ("https://u:p@evil.io/token", "ghcr.io", "evil.io is not on ghcr.io"),
        ("https://evil.co.uk/t", "registry.example.co.uk", "evil.co.uk is not on example.co.uk"),
        ("https://b.azurecr.io/t", "a.azurecr.io", "b.azurecr.io is not on a.azurecr.io"),
        ("http://127.0.0.2:5001/token", "127.0.0.1:5000", "127.0.0.2 is not on 127.0.0.1"),
        ("ftp://ghcr.io/token", "ghcr.io", "ghcr.io is plain http"),
        ("http://[x/token", "ghcr.io", "http://[x/token is plain http"),
    ],
)
def test_which_token_services_get_the_login(realm, registry, why) -> None:
    assert withheld_from(realm, registry) == why


@pytest.mark.parametrize(
    "host, registrable",
    [
        ("registry-1.docker.io", "docker.io"),
        ("ghcr.io", "ghcr.io"),
        ("registry.gitlab.com:443", "gitlab.com"),
        ("a.b.example.com.au", "example.com.au"),
        ("127.0.0.1:5000", "127.0.0.1"),
        ("[::1]:5000", "::1"),
        ("LOCALHOST", "localhost"),
    ],
)
def test_a_site_is_the_registrable_domain(host, registrable) -> None:
    assert site(host) == registrable


# -- GITHUB_TOKEN: api.github.com, GITHUB_API_URL's host over https, or loopback ------------------
@pytest.mark.parametrize(
    "api, actions, goes",
    [
        ("https://api.github.com", "", True),
        ("https://API.github.com:443/", "", True),
        ("https://user:pw@api.github.com", "", True),
        ("http://api.github.com", "", False),
        ("https://api.github.com.evil.io", "", False),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3", True),
        ("https://ghe.example.com/api/v3", "", False),
        ("https://ghe.example.com/api/v3", "http://ghe.example.com/api/v3", False),
        ("https://evil.example/api/v3", "https://ghe.example.com/api/v3", False),
        ("http://127.0.0.1:8080", "", True),
        ("http://localhost:8080", "", True),
        ("http://10.0.0.1:8080", "", False),
        ("ftp://api.github.com", "", False),
    ],
)
def test_where_the_github_token_may_go(monkeypatch, api, actions, goes) -> None:
    if actions:
        monkeypatch.setenv("GITHUB_API_URL", actions)
    assert pins.token_goes_to(api) is goes


@pytest.fixture
def github(stubs) -> Stub:
    """A GitHub releases API double: k3s's list (empty), 404 for anything else."""
    api = stubs("127.0.0.1")
    api.github = True
    return api


WARNED = (
    "bump: GITHUB_TOKEN not sent to {api}: it goes only to https://api.github.com, "
    "the host of GITHUB_API_URL over https, or this machine\n"
)
PLAIN = "bump: the login in KAIROS_GITHUB_API not sent to {api}: plain http\n"
NAMED = "http://***@api.example.test:{port}"


@pytest.mark.parametrize(
    "api, token, sent, warning",
    [
        ("http://127.0.0.1:{port}", True, f"Bearer {GITHUB_TOKEN}", ""),
        ("http://127.0.0.1:{port}", False, "", ""),
        ("http://api.example.test:{port}", True, "", WARNED.format(api="{api}")),
        ("http://kdt:{pw}@127.0.0.1:{port}", False, BASIC, ""),
        ("http://kdt:{pw}@api.example.test:{port}", False, "", PLAIN.format(api=NAMED)),
        (
            "http://kdt:{pw}@api.example.test:{port}",
            True,
            "",
            WARNED.format(api=NAMED) + PLAIN.format(api=NAMED),
        ),
    ],
)
def test_the_github_token_reaches_its_own_api_only(
    github, monkeypatch, capsys, api, token, sent, warning
) -> None:
    url = api.format(port=github.server_address[1], pw=PASSWORD)
    monkeypatch.setenv(pins.GITHUB_API_ENV, url)
    if token:
        monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    assert pins.release_tags("k3s") == []
    assert [auth for _, _, auth in github.seen] == [sent]
    out, err = capsys.readouterr()
    expected = warning.format(api=url, port=github.server_address[1])
    assert (out, err) == ("", expected)


@pytest.mark.parametrize(
    "api, line",
    [
        (
            "http://[::1",
            "KAIROS_GITHUB_API: http://[::1 is not a URL such as https://api.github.com",
        ),
        (
            "api.github.com",
            "KAIROS_GITHUB_API: api.github.com is not a URL such as https://api.github.com",
        ),
        (
            "kdt:{pw}@api.github.com",
            "KAIROS_GITHUB_API: ***@api.github.com is not a URL such as https://api.github.com",
        ),
    ],
)
def test_a_github_api_that_is_no_url_is_one_line(monkeypatch, api, line) -> None:
    monkeypatch.setenv(pins.GITHUB_API_ENV, api.format(pw=PASSWORD))
    with pytest.raises(pins.ResolveError) as caught:
        pins.release_tags("k3s")
    assert str(caught.value) == line


def test_a_release_list_error_prints_no_userinfo(github, monkeypatch, capsys) -> None:
    port = github.server_address[1]
    monkeypatch.setenv(pins.GITHUB_API_ENV, f"http://kdt:{PASSWORD}@127.0.0.1:{port}/")
    with pytest.raises(pins.ResolveError) as caught:
        pins.release_tags("k0s")  # the double has no k0s: 404
    assert str(caught.value) == (
        f"k0s: cannot read the release list at http://127.0.0.1:{port}/repos/k0sproject/k0s/"
        "releases?per_page=100 (HTTPError); give --to"
    )
    no_canary(str(caught.value), *capsys.readouterr())


# -- one function prints URLs: redact -------------------------------------------------------------
@pytest.mark.parametrize(
    "text, printed",
    [
        ("https://user:pass@host/x", "https://***@host/x"),
        ("http://kdt:p@ss@127.0.0.1:5/v2/", "http://***@127.0.0.1:5/v2/"),
        ("ssh://me@box", "ssh://***@box"),
        ("'kdt:hunter22@ghcr.io' is not a host", "'***@ghcr.io' is not a host"),
        ("https://h/t?scope=x&access_token=abc&n=1", "https://h/t?scope=x&access_token=***&n=1"),
        (
            "https://s3/b?X-Amz-Signature=ab12&X-Amz-Credential=k",
            "https://s3/b?X-Amz-Signature=***&X-Amz-Credential=***",
        ),
        ("header Authorization: Bearer eyJhbGciOi.x1", "header Authorization: Bearer ***"),
        ("Basic a2R0OmNhbmFyeQ==", "Basic ***"),
        ("identity kdt@localhost", "identity kdt@localhost"),
        (
            f"cannot resolve ubuntu:24.04@sha256:{'0a' * 32}",
            f"cannot resolve ubuntu:24.04@sha256:{'0a' * 32}",
        ),
        ("kdt:hunter22@sha256.example:0a1b/x", "***@sha256.example:0a1b/x"),
        ("https://github.com/me/x?per_page=100", "https://github.com/me/x?per_page=100"),
        ("Bearer tokens are scoped", "Bearer tokens are scoped"),
    ],
)
def test_redact(text, printed) -> None:
    assert redact(text) == printed


def _docker_socket_refusal() -> str:
    try:
        artifacts.docker_socket()
    except Skip as why:
        return str(why)
    return "accepted"


@pytest.mark.parametrize(
    "make, printed",
    [
        (
            lambda: str(StepError("engine", "connect", f"unreachable (ssh://kdt:{PASSWORD}@box)")),
            "engine: connect: unreachable (ssh://***@box)",
        ),
        (
            lambda: sign.one_line(ValueError(f"GET https://tuf.test/r?token={TOKEN}\n failed")),
            "GET https://tuf.test/r?token=*** failed",
        ),
        (
            _docker_socket_refusal,
            "AuroraBoot needs a local Docker socket (DOCKER_HOST is tcp://***@box:2376)",
        ),
    ],
)
def test_messages_of_other_steps_are_redacted(monkeypatch, make, printed) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://kdt:{PASSWORD}@box:2376")
    assert make() == printed


# -- as a user runs it: `invoke bump` --------------------------------------------------------------
RELEASE = """\
name: "my-distro"
source: "https://github.com/me/my-distro"
version: "v0.1.0"
base_image: "{base}:1"
kairos_init: "quay.io/kairos/kairos-init:v0.17.3"
auroraboot: "quay.io/kairos/auroraboot:v0.26.2"
registry: "{registry}"
namespace: "me"
cells:
  - arch: "amd64"
    provider: "k0s"
    provider_version: "v1.35.1+k0s.0"
"""


@pytest.mark.parametrize(
    "registry, code, printed",
    [
        ("{reg}", 0, "bumped base: {reg}/kairos/base:1 -> {reg}/kairos/base:1@" + DIGEST),
        ("ghcr.io", 1, "bump: {reg}/kairos/base:1: registry {reg} " + NEEDS_LOGIN),
    ],
)
def test_invoke_bump_sends_the_login_to_the_release_registry_only(
    stubs, tmp_path, registry, code, printed
) -> None:
    reg = stubs()
    reg.challenge = 'Basic realm="test"'
    path = tmp_path / "release.yaml"
    text = RELEASE.format(base=f"{reg.host}/{REPO}", registry=registry.format(reg=reg.host))
    path.write_text(text, encoding="utf-8")
    env = {USER_ENV: USER, PASSWORD_ENV: PASSWORD, "NO_PROXY": "*", "no_proxy": "*"}
    run = run_invoke("bump", "base", "--release-file", str(path), env=env)
    assert run.returncode == code
    (line,) = (run.stdout if code == 0 else run.stderr).splitlines()
    assert re.sub(r"\s+$", "", line).startswith(printed.format(reg=reg.host))
    assert (BASIC in reg.authorizations()) is (code == 0)
    no_canary(run.stdout, run.stderr)


def test_invoke_bump_prints_no_github_userinfo(github, tmp_path) -> None:
    path = tmp_path / "release.yaml"
    path.write_text(RELEASE.format(base="ubuntu", registry="ghcr.io"), encoding="utf-8")
    port = github.server_address[1]
    env = {pins.GITHUB_API_ENV: f"http://kdt:{PASSWORD}@127.0.0.1:{port}", "NO_PROXY": "*"}
    run = run_invoke("bump", "k0s", "--release-file", str(path), env=env)
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == (
        f"bump: k0s: cannot read the release list at http://127.0.0.1:{port}/repos/k0sproject/"
        "k0s/releases?per_page=100 (HTTPError); give --to\n"
    )

"""The third-party clients are found from their pins, and a missing one fails the test."""

from __future__ import annotations

import pytest

from tests.support import clients

# Docker engine, QEMU, the pinned clients: what .ci/setup provides (`nox -s fast` skips these).
pytestmark = pytest.mark.e2e


def test_pins_come_from_tools_txt_alone() -> None:
    pins = clients.pins()
    assert set(pins) == {"cosign", "cosign2", "regctl", "crane", "syft", "grype"}
    assert pins["cosign"].package == "github.com/sigstore/cosign/v3/cmd/cosign"
    assert pins["cosign2"].version.startswith("v2.")


def test_a_missing_tool_fails_naming_setup(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KDT_TOOLS", str(tmp_path))
    with pytest.raises(
        pytest.fail.Exception, match=r"cosign v3\.\S+ is missing at .*: run \.ci/setup"
    ):
        clients.tool("cosign")


def test_installed_tools_are_the_pinned_versions() -> None:
    for name in ("cosign", "cosign2"):
        proc = clients.call([clients.tool(name), "version"])
        assert clients.pins()[name].version.lstrip("v") in proc.stdout + proc.stderr, name

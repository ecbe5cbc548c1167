"""The CLI contract table (tests/standins/contract.yaml), checked both ways.

(a) The stand-ins refuse what upstream refuses: every flag of the table that
takes a value fails without one, with cobra's or urfave's own message; unknown
flags, enum values outside the list, flags after AuroraBoot's positional
argument and wrong argument counts fail; a good call passes.
(b) The generated repo calls them within the table: the Dockerfile's
kairos-init RUN lines run through the real stand-in (parse-only) with the build
args each kind of cell produces, and the AuroraBoot argv lists of
kairos_distro/artifacts.py and keys.py parse, flags before the positional.

Parse-only (KDT_STANDIN_PARSE_ONLY=1) makes a stand-in print what it parsed as
JSON instead of converting a system or building media, so these run on the host.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.support import standins
from tests.support.bake import TEMPLATE, bake

TABLE = yaml.safe_load((standins.HERE / "contract.yaml").read_text())
KI = TABLE["kairos-init"]
AB = TABLE["auroraboot"]
PROJECT = TEMPLATE / "{{cookiecutter.project}}"
VALUED = ("string", "enum", "enum-slice", "string-slice", "int64")


def call(name: str, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(standins.go_binary(name)), *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "KDT_STANDIN_PARSE_ONLY": "1", **(env or {})},
        check=False,
    )


def refused(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert message in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def parsed(proc: subprocess.CompletedProcess) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def rows(flags: list[dict], *types: str) -> list[dict]:
    return [f for f in flags if f["type"] in types and not f.get("dynamic")]


# -- (a) kairos-init -------------------------------------------------------------------
ROOT = KI["commands"]["kairos-init"]["flags"]
HOST = standins._MACHINES.get(os.uname().machine, "amd64")
GOOD_ROOT = ["--version", "v0.1.0"]


@pytest.mark.parametrize("flag", rows(ROOT, *VALUED), ids=lambda f: f["name"])
def test_kairos_init_flag_without_value_is_refused(flag):
    base = [] if flag["name"] == "version" else GOOD_ROOT
    refused(
        call("kairos-init", *base, f"--{flag['name']}"), f"flag needs an argument: --{flag['name']}"
    )
    if flag.get("short"):
        s = flag["short"]
        refused(call("kairos-init", *base, f"-{s}"), f"flag needs an argument: '{s}' in -{s}")


@pytest.mark.parametrize("flag", rows(ROOT, "enum", "enum-slice"), ids=lambda f: f["name"])
def test_kairos_init_enum_refuses_values_outside_its_list(flag):
    proc = call("kairos-init", *GOOD_ROOT, f"--{flag['name']}", "not-a-value")
    refused(proc, f"not-a-value is not included in {','.join(flag['values'])}")
    for value in flag["values"]:
        proc = call("kairos-init", *GOOD_ROOT, f"--{flag['name']}={value}")
        if flag["name"] == "model" and value != "generic" and HOST != "arm64":
            refused(proc, f'model "{value}" requires architecture "arm64"')  # boards need arm64
        else:
            assert parsed(proc)["command"] == "kairos-init"


def test_kairos_init_trusted_is_a_string_in_validate_too():
    (trusted,) = KI["commands"]["validate"]["flags"]
    assert trusted["type"] == "string" and trusted["default"] == "false"
    refused(call("kairos-init", "validate", "-t"), "flag needs an argument: 't' in -t")
    refused(call("kairos-init", "validate", "--trusted"), "flag needs an argument: --trusted")
    assert parsed(call("kairos-init", "validate")) == {"command": "validate", "trusted": False}
    for value, trusted_boot in (("true", True), ("1", True), ("TRUE", True), ("false", False)):
        assert parsed(call("kairos-init", "validate", "-t", value))["trusted"] is trusted_boot


def test_kairos_init_refuses_unknown_and_misplaced_flags():
    refused(call("kairos-init", *GOOD_ROOT, "--bogus"), "unknown flag: --bogus")
    refused(call("kairos-init", *GOOD_ROOT, "-k", "k3s"), "unknown shorthand flag: 'k' in -k")
    refused(call("kairos-init", *GOOD_ROOT, "--k8sversion", "v1"), "unknown flag: --k8sversion")
    # Root flags are local: validate has -t only.
    refused(call("kairos-init", "validate", "--version", "v1"), "unknown flag: --version")
    refused(call("kairos-init", "validate", "-m", "generic"), "unknown shorthand flag: 'm' in -m")
    refused(call("kairos-init", "stray", *GOOD_ROOT), 'unknown command "stray" for "kairos-init"')


def test_kairos_init_version_is_required_and_semver():
    assert [f["name"] for f in ROOT if f.get("required")] == ["version"]
    refused(call("kairos-init", "-s", "install"), 'required flag(s) "version" not set')
    refused(call("kairos-init", "--version", "latest"), "error parsing version")
    assert parsed(call("kairos-init", "--version", "1.2"))["version"] == "v1.2.0"  # v forced


def test_kairos_init_provider_version_flags_exist_per_provider():
    refused(call("kairos-init", *GOOD_ROOT, "--provider-k3s-version=v1"), "unknown flag")
    out = parsed(
        call("kairos-init", *GOOD_ROOT, "-p", "k3s", "--provider-k3s-version", "v1.35.1+k3s1")
    )
    assert out["providers"] == ["k3s"] and out["provider_version"] == "v1.35.1+k3s1"
    assert out["variant"] == "standard"
    # Upstream's os.Args scan does not see `-pk3s`: no dynamic flag for it.
    refused(call("kairos-init", *GOOD_ROOT, "-pk3s", "--provider-k3s-version=v1"), "unknown flag")
    assert parsed(call("kairos-init", *GOOD_ROOT))["variant"] == "core"


def test_kairos_init_bool_flags_take_no_value():
    for flag in rows(ROOT, "bool"):
        assert parsed(call("kairos-init", *GOOD_ROOT, f"--{flag['name']}"))["command"]
        # a separate word after a bool flag is a positional argument: refused
        refused(call("kairos-init", *GOOD_ROOT, f"--{flag['name']}", "true"), "unknown command")


# -- (a) AuroraBoot --------------------------------------------------------------------
REQUIRED_UKI = [
    arg
    for f in AB["commands"]["build-uki"]["flags"]
    if f.get("required")
    for arg in (f"--{f['name']}", "/keys/x")
]
GOOD = {"build-iso": ["--output", "/o"], "build-uki": REQUIRED_UKI, "genkey": []}
POSITIONAL = {"build-iso": "docker:img", "build-uki": "docker:img", "genkey": "my-org"}
COMMAND_FLAGS = [(c, f) for c, spec in AB["commands"].items() for f in spec["flags"]]


@pytest.mark.parametrize(
    "command,flag", COMMAND_FLAGS, ids=lambda x: x if isinstance(x, str) else x["name"]
)
def test_auroraboot_flag_without_value_is_refused(command, flag):
    names = [flag["name"], *flag.get("aliases", [])]
    if flag["type"] == "bool":
        proc = call("auroraboot", command, *GOOD[command], f"--{names[0]}", POSITIONAL[command])
        if flag["name"] in AB["commands"][command].get("stand_in_refuses", []):
            refused(proc, f"the STAND-IN does not implement --{flag['name']}")
        else:
            assert parsed(proc)["flags"][flag["name"]] == "true"
        return
    for name in names:
        proc = call("auroraboot", command, *GOOD[command], f"--{name}")
        refused(proc, f"flag needs an argument: -{name}")
        assert proc.stderr.count("\n") == 1, proc.stderr  # one line on stderr


@pytest.mark.parametrize("command", sorted(AB["commands"]))
def test_auroraboot_flags_after_the_positional_fail_loudly(command):
    spec = AB["commands"][command]
    for flag in spec["flags"]:
        value = [] if flag["type"] == "bool" else ["x"]
        proc = call(
            "auroraboot", command, *GOOD[command], POSITIONAL[command], f"--{flag['name']}", *value
        )
        refused(proc, f"--{flag['name']} comes after <{spec['positional']['name']}>")
        assert proc.stderr.count("\n") == 1, proc.stderr
    refused(call("auroraboot", command, *GOOD[command]), "takes exactly 1")
    refused(call("auroraboot", command, *GOOD[command], "a", "b"), "takes exactly 1")
    refused(
        call("auroraboot", command, *GOOD[command], "--bogus", "a"),
        "flag provided but not defined: -bogus",
    )
    out = parsed(call("auroraboot", command, *GOOD[command], POSITIONAL[command]))
    assert out["args"] == [POSITIONAL[command]]
    for alias in spec.get("aliases", []):
        assert (
            parsed(call("auroraboot", alias, *GOOD[command], POSITIONAL[command]))["command"]
            == command
        )


def test_auroraboot_global_flags_and_legacy_mode():
    for flag in rows(AB["global"]["flags"], *VALUED):
        refused(call("auroraboot", f"--{flag['name']}"), f"flag needs an argument: -{flag['name']}")
    out = parsed(call("auroraboot", "--debug", "--set", "disk.efi=true", "--set", "state_dir=/o"))
    assert out["global"]["set"] == "disk.efi=true\nstate_dir=/o" and out["command"] == ""
    refused(
        call("auroraboot", "--set", "disk.efi=true", "config.yaml", "--debug"),
        "--debug comes after",
    )
    # Global flags belong before the subcommand, as in urfave/cli.
    refused(
        call("auroraboot", "build-iso", "--debug", "docker:x"),
        "flag provided but not defined: -debug",
    )
    for name in AB["not_implemented"]:
        refused(call("auroraboot", name), "STAND-IN implements build-iso")


def test_auroraboot_required_and_checked_values():
    required = [f["name"] for f in AB["commands"]["build-uki"]["flags"] if f.get("required")]
    refused(
        call("auroraboot", "build-uki", "docker:x"),
        f'Required flags "{", ".join(required)}" not set',
    )
    for command, flag in COMMAND_FLAGS:
        if flag.get("values"):
            proc = call("auroraboot", command, *GOOD[command], f"--{flag['name']}", "s390x", "x")
            refused(proc, "s390x")
            ok = call(
                "auroraboot", command, *GOOD[command], f"--{flag['name']}", flag["values"][-1], "x"
            )
            assert parsed(ok)["flags"][flag["name"]] == flag["values"][-1]


# -- (b) the generated repo against the table -----------------------------------------
def dockerfile_runs(text: str) -> list[str]:
    """The shell of each RUN that calls kairos-init, bind mount option removed."""
    joined = re.sub(r"\\\n", " ", text)
    runs = [line[4:] for line in joined.splitlines() if line.startswith("RUN ")]
    return [re.sub(r"--mount=\S+\s+", "", run) for run in runs if "/kairos-init" in run]


def dockerfile_args(text: str) -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(.*)$", text, flags=re.M))


def run_in_standin(
    shell: str, build_args: dict[str, str], arch: str = ""
) -> subprocess.CompletedProcess:
    """The RUN line's shell with the stand-in (of the cell's arch: arm64 runs under
    qemu-user, as the arm64 build does) in place of the bind-mounted binary."""
    binary = str(standins.go_binary("kairos-init", arch))
    return subprocess.run(
        ["sh", "-c", shell.replace("/kairos-init", binary)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "KDT_STANDIN_PARSE_ONLY": "1", **build_args},
        check=False,
    )


@pytest.fixture(scope="module")
def distro(tmp_path_factory):
    """The kairos_distro package and a release loaded from a baked release.yaml."""
    from kairos_distro import artifacts, build, config, keys, naming

    repo = bake(tmp_path_factory.mktemp("bake"))
    release = config.load(repo / "release.yaml")
    mods = {
        "artifacts": artifacts,
        "build": build,
        "config": config,
        "keys": keys,
        "naming": naming,
    }
    return release, mods


def cells(config) -> list:
    return [
        config.Cell(arch="amd64"),
        config.Cell(arch="amd64", trusted_boot=True),
        config.Cell(arch="amd64", provider="k3s", provider_version="v1.35.1+k3s1"),
        config.Cell(arch="amd64", provider="k0s", provider_version="v1.32.1+k0s.0", fips=True),
        config.Cell(arch="arm64", model="rpi4"),
        config.Cell(arch="amd64", raw=True),
    ]


def test_dockerfile_kairos_init_calls_parse_for_every_kind_of_cell(distro):
    release, m = distro
    text = (PROJECT / "Dockerfile").read_text()
    runs = dockerfile_runs(text)
    assert len(runs) == 3, runs
    for cell in cells(m["config"]):
        args = {**dockerfile_args(text), **m["build"].build_args(release, cell, release.base_image)}
        install, init, check = (run_in_standin(run, args, cell.arch) for run in runs)
        for proc, stage in ((install, "install"), (init, "init")):
            out = parsed(proc)
            assert out["stage"] == stage and out["model"] == cell.model, cell
            assert out["trusted"] is cell.trusted_boot and out["fips"] is cell.fips, cell
            assert out["providers"] == ([cell.provider] if cell.provider else []), cell
            assert out["provider_version"] == (cell.provider_version or "")
            assert out["variant"] == cell.variant
            assert out["version"].lstrip("v") == release.version.lstrip("v")
        assert parsed(check) == {"command": "validate", "trusted": cell.trusted_boot}


# The validate line before fed0b04 (issue #10): `-t` without its value, which
# upstream's cobra refuses, so every trusted-boot build failed for real.
OLD_VALIDATE = (
    "RUN --mount=type=bind,from=kairos-init,src=/kairos-init,dst=/kairos-init \\\n"
    '    if [ "$TRUSTED_BOOT" = "true" ]; then /kairos-init validate -t; '
    "else /kairos-init validate; fi\n"
)


def test_old_dockerfile_validate_without_value_is_refused():
    (run,) = dockerfile_runs(OLD_VALIDATE)
    refused(run_in_standin(run, {"TRUSTED_BOOT": "true"}), "flag needs an argument: 't' in -t")
    assert parsed(run_in_standin(run, {"TRUSTED_BOOT": "false"}))["trusted"] is False


def check_settings(settings: list[str]) -> None:
    """--set key=value pairs: keys of the table, values of their type."""
    keys = {**AB["legacy_set"]["keys"], **AB["legacy_set"]["stand_in_only"]}
    for setting in settings:
        key, _, value = setting.partition("=")
        assert key in keys, setting
        if keys[key]["type"] == "bool":
            assert value in ("true", "false"), setting


def test_auroraboot_argv_of_the_generated_code_parse(distro):
    release, m = distro
    seen = set()
    for cell in cells(m["config"]):
        ident = m["naming"].Identity.expected(release, cell)
        for plan in m["artifacts"].plan_media(release, cell, "reg/img:tag", ident):
            seen.add(plan.kind)
            out = parsed(call("auroraboot", *plan.command))
            assert out["global"]["debug"] == "true"
            if plan.kind == "raw":
                assert out["command"] == "" and not out["args"]
                check_settings(out["global"]["set"].splitlines())
                continue
            assert out["args"] == ["docker:reg/img:tag"], plan.command  # the source, last
            if plan.kind == "iso":
                assert out["command"] == "build-iso" and out["flags"]["output"] == "/output/"
                assert out["flags"]["arch"] == cell.arch
            else:
                assert out["command"] == "build-uki" and out["flags"]["output-type"] == "iso"
                assert out["flags"]["sb-key"].startswith(m["artifacts"].KEYS_MOUNT)
    assert seen == {"iso", "raw", "uki"}
    out = parsed(call("auroraboot", *m["keys"].genkey_command("my-org", 30)))
    assert out["command"] == "genkey" and out["args"] == ["my-org"]
    assert out["flags"]["expiration-in-days"] == "30" and out["flags"]["output"] == "/keys"


def test_auroraboot_argv_flags_are_in_the_table(distro):
    """Walk each argv with the table: known flags, values where a value is due."""
    release, m = distro
    plans = [
        plan
        for cell in cells(m["config"])
        for plan in m["artifacts"].plan_media(
            release, cell, "reg/img:tag", m["naming"].Identity.expected(release, cell)
        )
    ]
    argvs = [p.command for p in plans] + [m["keys"].genkey_command("my-org", 30)]
    for argv in argvs:
        scope = {f["name"]: f for f in AB["global"]["flags"]}
        rest = list(argv)
        while rest:
            word = rest.pop(0)
            if word in AB["commands"]:
                scope = {
                    n: f
                    for f in AB["commands"][word]["flags"]
                    for n in (f["name"], *f.get("aliases", []))
                }
                continue
            if not word.startswith("-"):
                assert not rest, f"{word!r} is followed by {rest}: flags after it are dropped"
                continue
            flag = scope[word.lstrip("-").split("=")[0]]
            if flag["type"] != "bool" and "=" not in word:
                value = rest.pop(0)
                assert not value.startswith("-"), (argv, word)
                if flag["type"] == "int64":
                    int(value)


def test_go_unit_tests_of_the_standins_pass():
    """go test: flavor detection of the matrix bases, kairos-release keys, the -p scan,
    the install stage's FIPS-on-Ubuntu refusal."""
    proc = subprocess.run(
        ["go", "test", "-count=1", "-v", "./..."],
        cwd=standins.HERE,
        capture_output=True,
        text=True,
        env={**os.environ, "GOTOOLCHAIN": "local"},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = ("TestDetectMatrixBases", "TestReleaseFileHasEveryKeyValidateChecks")
    for name in (*names, "TestInstallRefusesFipsOnUbuntuOnly"):
        assert f"--- PASS: {name}" in proc.stdout

"""Build stage: convert the base image into a Kairos image, one cell at a time.

The Dockerfile bind-mounts kairos-init from its image (`RUN --mount`), which
needs BuildKit; docker-py only speaks the classic builder, so the build runs
the docker CLI with an argv list. Everything else talks to the engine API.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import ledger, naming
from .config import SEMVER, Cell, Release
from .naming import Identity
from .ref import ImageRef, RefError
from .runner import Answer, Runner, StepError
from .words import clip

KAIROS_RELEASE = "/etc/kairos-release"


@dataclass(frozen=True)
class BuildPlan:
    cell: Cell
    tag: str
    build_args: dict[str, str]
    labels: dict[str, str]
    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Built:
    cell: Cell
    image_id: str
    ref: str
    identity: Identity


def build_args(release: Release, cell: Cell, base_image: str) -> dict[str, str]:
    """The build args of upstream's canonical Dockerfile, from one cell."""
    return {
        "BASE_IMAGE": base_image,
        "KAIROS_INIT_IMAGE": release.kairos_init_for(cell),
        "MODEL": cell.model,
        "TRUSTED_BOOT": "true" if cell.trusted_boot else "false",
        "KUBERNETES_DISTRO": cell.provider or "",
        "KUBERNETES_VERSION": cell.provider_version or "",
        "VERSION": release.version,
        "FIPS": "fips" if cell.fips else "no-fips",
    }


def labels(release: Release, cell: Cell, base_digest: str, revision: str) -> dict[str, str]:
    oci = "org.opencontainers.image"
    return {
        f"{oci}.source": release.source,
        f"{oci}.description": release.description,
        f"{oci}.revision": revision,
        f"{oci}.version": release.version,
        f"{oci}.base.name": str(ImageRef.parse(release.base_image).with_digest("")),
        f"{oci}.base.digest": base_digest,
        "io.kairos.init.image": release.kairos_init_for(cell),
        "io.kairos.cell": cell.id,
    }


def plan(
    release: Release,
    cell: Cell,
    *,
    builder: list[str],
    base_image: str,
    base_digest: str,
    revision: str = "",
    network: str = "",
    context: Path = Path("."),
    iidfile: Path = Path("/dev/null"),
    extra_labels: dict[str, str] | None = None,
    no_cache: bool = False,
) -> BuildPlan:
    """The exact build command for a cell; no effects.

    `no_cache`: every step runs again, so kairos-init fetches today's packages
    (a cached install step would keep yesterday's).
    """
    tag = naming.local_tag(release, cell)
    args = build_args(release, cell, base_image)
    labs = {**labels(release, cell, base_digest, revision), **(extra_labels or {})}
    argv = [*builder, "--progress", "plain", "--platform", f"linux/{cell.arch}"]
    argv += ["--file", str(context / "Dockerfile"), "--tag", tag, "--iidfile", str(iidfile)]
    if network:
        argv += ["--network", network]
    if no_cache:
        argv.append("--no-cache")
    for key, value in args.items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in labs.items():
        argv += ["--label", f"{key}={value}"]
    argv.append(str(context))
    env = {"DOCKER_BUILDKIT": "1"} if "buildx" not in builder else {}
    return BuildPlan(cell, tag, args, labs, argv, env)


def builder(runner: Runner) -> list[str]:
    """`docker buildx build --load` when buildx exists, else BuildKit via the env.

    Clients from 23.0 on build with BuildKit only through buildx; older ones
    honour DOCKER_BUILDKIT=1.
    """
    docker_cli = runner.docker_cli
    try:
        if runner.query([docker_cli, "buildx", "version"]).code == 0:
            return [docker_cli, "buildx", "build", "--load"]
        version = runner.query([docker_cli, "version", "--format", "{{.Client.Version}}"])
        version = version.out.strip()
    except OSError as err:
        raise StepError("engine", "build", f"cannot run {docker_cli}: {err.strerror}") from None
    major = version.split(".")[0]
    if major.isdigit() and int(major) >= 23:
        raise StepError(
            "engine",
            "build",
            f"{docker_cli} {version} has no buildx plugin, so it cannot build with "
            "BuildKit: install buildx or set kairos.docker_cli",
        )
    return [docker_cli, "build"]


def resolve_base(runner: Runner, ref: str) -> tuple[str, str]:
    """(reference to build from, digest), pinned when possible.

    Used for every input image (base, kairos-init, AuroraBoot): a digest in the
    reference wins, then the local engine's RepoDigest, then the registry; a
    local-only image (e.g. imported) has no registry digest, so its ID stands in.
    """
    wanted = ImageRef.parse(ref)
    if wanted.digest:
        return ref, wanted.digest
    if runner.dry:
        return ref, "<resolved at build time>"
    import docker

    client = runner.docker()
    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        try:
            digest = client.images.get_registry_data(ref).id
        except docker.errors.APIError as err:
            raise StepError("base", "resolve", f"cannot resolve {ref}: {err.explanation}") from None
        return f"{ref}@{digest}", digest
    for entry in image.attrs.get("RepoDigests") or []:
        try:
            pulled = ImageRef.parse(entry)
        except RefError:  # old engines list `<none>@<none>`
            continue
        if pulled.full_name == wanted.full_name:
            return f"{ref}@{pulled.digest}", pulled.digest
    # A local-only image (e.g. imported) has no registry digest: label its ID.
    return ref, image.id


def _git(runner: Runner, root: Path, *args: str) -> Answer:
    try:
        return runner.query(["git", "-C", str(root), *args])
    except OSError:
        raise StepError("version", "git", "version is git but git is not installed") from None


def git_version(root: Path = Path("."), *, runner: Runner | None = None) -> str:
    """`git describe --tags --dirty` as semver with a leading v (a query: --dry asks too).

    Before the first tag: v0.0.0-<sha>[-dirty], as the factory action does.
    """
    runner = runner or Runner()
    described = _git(runner, root, "describe", "--tags", "--dirty")
    if described.code == 0 and described.out.strip():
        version = described.out.strip()
        return version if version.startswith("v") else f"v{version}"
    head = _git(runner, root, "rev-parse", "--short", "HEAD")
    if head.code != 0 or not head.out.strip():
        raise StepError("version", "git", "version is git but this is not a git checkout")
    dirty = _git(runner, root, "status", "--porcelain", "--untracked-files=no").out.strip()
    return f"v0.0.0-{head.out.strip()}" + ("-dirty" if dirty else "")


def with_version(release: Release, runner: Runner | None = None) -> Release:
    """The release with `version: git` resolved; StepError (version, git) says why not."""
    if release.version != "git":
        return release
    version = git_version(release.path.parent, runner=runner)
    if not SEMVER.match(version):
        raise StepError("version", "git", f"git describe gave {clip(version)}, not semver")
    return dataclasses.replace(release, version=version)


def git_revision(root: Path = Path("."), *, runner: Runner | None = None) -> str:
    try:
        head = (runner or Runner()).query(["git", "-C", str(root), "rev-parse", "HEAD"])
    except OSError:  # no git: the revision label stays empty
        return ""
    return head.out.strip() if head.code == 0 else ""


def read_identity(runner: Runner, image: str) -> Identity:
    """Read /etc/kairos-release out of an image without running it."""
    client = runner.docker()
    container = client.containers.create(image, command=["/bin/true"], entrypoint=[])
    try:
        stream, _ = container.get_archive(KAIROS_RELEASE)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.extractfile(tar.getmembers()[0])
            text = member.read().decode() if member else ""
    except Exception as err:  # docker.errors.NotFound and tar errors alike
        raise StepError(image, "identity", f"cannot read {KAIROS_RELEASE}: {err}") from None
    finally:
        container.remove(force=True)
    return Identity.from_kairos_release(naming.parse_release_file(text))


def local(runner: Runner, release: Release, cell: Cell) -> Built | None:
    """The cell's last local build, named from its own /etc/kairos-release; None when dry."""
    if runner.dry:
        return None
    import docker

    tag = naming.local_tag(release, cell)
    try:
        runner.docker().images.get(tag)
    except docker.errors.ImageNotFound:
        why = f"no local image {tag}; run `invoke build --cell {cell.id}`"
        raise StepError(cell.id, "find build", why) from None
    return identify(runner, release, cell, tag)


def identify(runner: Runner, release: Release, cell: Cell, image: str) -> Built:
    """Name a built image from what it says it is, checking it is the cell asked for."""
    ident = read_identity(runner, image)
    wrong = ident.mismatches(cell)
    if wrong:
        raise StepError(cell.id, "identity", f"image disagrees with cell: {wrong[0]}")
    ref = naming.image_ref(release, ident)
    image_id = runner.docker().images.get(image).id
    return Built(cell, image_id, ref, ident)


def run(
    runner: Runner,
    release: Release,
    cell: Cell,
    *,
    network: str = "",
    context: Path = Path("."),
    stamp: str = "",
    no_cache: bool = False,
) -> Built | None:
    """Build one cell and tag it with its published name; None when dry.

    `stamp` (the release fingerprint) becomes a label, so a rerun can reuse it;
    `no_cache` builds without the build cache (see `plan`).
    """
    base, digest = resolve_base(runner, release.base_image)
    with tempfile.TemporaryDirectory() as tmp:
        iidfile = Path(tmp) / "iid"
        build_plan = plan(
            release,
            cell,
            builder=[runner.docker_cli, "build"] if runner.dry else builder(runner),
            base_image=base,
            base_digest=digest,
            revision=git_revision(context, runner=runner),
            network=network,
            context=context,
            iidfile=iidfile,
            extra_labels={ledger.LABEL: stamp} if stamp else None,
            no_cache=no_cache,
        )
        runner.run(cell.id, "build", build_plan.argv, build_plan.env)

    def shown() -> str:  # the name the image is expected to give itself
        expected = naming.image_ref(release, Identity.expected(release, cell))
        return f"tag {build_plan.tag} as {expected}"

    return runner.act(cell.id, shown, lambda: _name(runner, release, cell, build_plan.tag))


def _name(runner: Runner, release: Release, cell: Cell, local: str) -> Built:
    """Tag the local build with the name its own /etc/kairos-release gives it."""
    built = identify(runner, release, cell, local)
    target = naming.image(release, built.identity)
    runner.docker().images.get(built.image_id).tag(target.full_name, target.tag)
    runner.say(cell.id, f"built {built.ref}")
    return built


# -- incremental releases: the fingerprint and the local build (see ledger) -------------
# What .dockerignore keeps out of the build context (the overlay's own README).
NOT_IN_CONTEXT = ("overlay/README.md",)


def tree_digest(context: Path) -> dict[str, str]:
    """What the build consumes: the Dockerfile, .dockerignore and overlay/, entry by entry.

    Files by mode and content, symlinks by their target, directories by mode
    (an empty one still lands in the image).
    """
    paths = [context / "Dockerfile", context / ".dockerignore"]
    paths += sorted((context / "overlay").rglob("*"))
    out = {}
    for path in paths:
        name = path.relative_to(context).as_posix()
        if name in NOT_IN_CONTEXT or not (path.exists() or path.is_symlink()):
            continue
        mode = oct(path.lstat().st_mode & 0o7777)
        if path.is_symlink():
            out[name] = f"link:{os.readlink(path)}"
        elif path.is_dir():
            out[name] = f"dir:{mode}"
        else:
            out[name] = f"{mode}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
    return out


def fingerprint_inputs(
    release: Release, cell: Cell, digests: dict[str, str], tree: dict[str, str]
) -> dict[str, Any]:
    """Every input of a cell's image, by name (the ledger keeps them in its record).

    The git revision is left out on purpose: a commit that changes nothing a
    cell consumes must not rebuild it.
    """
    return {
        "cell": cell.id,
        "build_args": build_args(release, cell, release.base_image),
        "labels": {k: v for k, v in labels(release, cell, "", "").items() if v},
        "digests": _cell_digests(cell, digests),
        "tree": tree,
    }


def fingerprint(release: Release, cell: Cell, digests: dict[str, str], tree: dict[str, str]) -> str:
    """A digest of every input of a cell's artifacts; equal inputs, equal fingerprint."""
    inputs = fingerprint_inputs(release, cell, digests, tree)
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def input_digests(runner: Runner, release: Release) -> dict[str, str]:
    """Digests of the input images (resolved once per run)."""
    refs = {
        "base": release.base_image,
        "kairos_init": release.kairos_init,
        "auroraboot": release.auroraboot,
    }
    if release.kairos_init_riscv64:
        refs["kairos_init_riscv64"] = release.kairos_init_riscv64
    return {name: resolve_base(runner, ref)[1] for name, ref in refs.items()}


def _cell_digests(cell: Cell, digests: dict[str, str]) -> dict[str, str]:
    """The input digests `cell` consumes: riscv64 cells may have their own kairos-init."""
    own = dict(digests)
    riscv64 = own.pop("kairos_init_riscv64", None)
    if cell.arch == "riscv64" and riscv64:
        own["kairos_init"] = riscv64
    return own


def local_label(runner: Runner, release: Release, cell: Cell) -> str | None:
    """The ledger label of the cell's last local build ("" unlabelled); None without one."""
    import docker

    try:
        image = runner.docker().images.get(naming.local_tag(release, cell))
    except docker.errors.ImageNotFound:
        return None
    return (image.labels or {}).get(ledger.LABEL, "")


def adopt(runner: Runner, release: Release, cell: Cell) -> Built:
    """Take the cell's last local build as this run's, under its published name."""
    built = identify(runner, release, cell, naming.local_tag(release, cell))
    target = naming.image(release, built.identity)  # e.g. another registry now
    runner.docker().images.get(built.image_id).tag(target.full_name, target.tag)
    runner.say(cell.id, f"reusing {built.ref} (same inputs)")
    return built

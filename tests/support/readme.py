"""The verification block of a baked repo's README: what users are told to run."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

ASSIGNMENT = re.compile(r"^([A-Z_]+)=(.*)$")


@dataclass(frozen=True)
class Verification:
    variables: dict[str, str]  # NAME -> value, as bash would assign it
    v3: list[str]  # every other line of the first block (invoke trusted-root, cosign v3)
    v2: list[str]  # the cosign v2 lines that replace v3's verify and verify-attestation

    def script(self, version: str, values: dict[str, str]) -> str:
        """A bash script: `values` assigned (quoted), then the README lines verbatim."""
        if version == "cosign":
            lines = self.v3
        else:
            replaced = ("cosign verify ", "cosign verify-attestation ")
            lines = [line for line in self.v3 if not line.startswith(replaced)] + self.v2
        assigned = [f"{name}={shlex.quote(value)}" for name, value in values.items()]
        return "\n".join(["set -euo pipefail", *assigned, *lines]) + "\n"


def _blocks(text: str) -> list[list[str]]:
    return [block.strip().splitlines() for block in re.findall(r"```sh\n(.*?)```", text, re.S)]


def verification(readme: str) -> Verification:
    """The block that starts with `invoke trusted-root` and the cosign v2 block after it."""
    section = readme[readme.index("## Signing") :]
    blocks = _blocks(section)
    first = next(i for i, b in enumerate(blocks) if b[0].startswith("invoke trusted-root"))
    variables, lines = {}, []
    for line in blocks[first]:
        found = ASSIGNMENT.match(line)
        if found:
            (value,) = shlex.split(found[2], comments=True)
            variables[found[1]] = value
        else:
            lines.append(line)
    return Verification(variables, lines, blocks[first + 1])

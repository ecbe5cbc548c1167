"""Refuse answers that kairos-init or AuroraBoot would refuse, before any file exists.

The answers reach this script as JSON data (never pasted into code), and the
rules are the generated repo's own: the hook renders release.yaml from the
answers and validates it with kairos_distro.config, so a refused answer and a
refused release.yaml can never disagree.
"""

import json
import re
import sys
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

# release.yaml field -> the prompt that feeds it
FIELD_ANSWER = {
    "name": "project",
    "source": "publisher",
    "description": "description",
    "version": "version",
    "base_image": "base_image",
    "kairos_init": "kairos_init_version",
    "kairos_init_riscv64": "architectures",
    "auroraboot": "auroraboot_version",
    "registry": "registry",
    "namespace": "registry",
    "repository": "registry",
    "cells": "architectures",
    "arch": "architectures",
    "model": "model",
    "provider": "provider",
    "provider_version": "provider_versions",
    "trusted_boot": "trusted_boot",
    "fips": "fips",
}
PUBLISHER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")


# Absolute, from local_extensions.py: `_repo_dir` is relative to where
# cookiecutter was started (`cookiecutter .`), not to where hooks run.
TEMPLATE = Path(json.loads(r"""[{{ template_dir | tojson }}]""")[0])


def template_dir() -> Path:
    return TEMPLATE / "{% raw %}{{cookiecutter.project}}{% endraw %}"


def refuse(answer: str, message: str) -> None:
    print(f"ERROR: answer {answer!r}: {message}", file=sys.stderr)
    sys.exit(1)


def check_answers() -> None:
    if not PUBLISHER.match(ANSWERS["publisher"]):
        refuse("publisher", f"{ANSWERS['publisher']!r} is not an organisation or user name")
    custom = ANSWERS["custom_base_image"].strip()
    if ANSWERS["base_image"] == "custom" and not custom:
        refuse("custom_base_image", "is required when base_image is 'custom'")
    if ANSWERS["base_image"] != "custom" and custom:
        refuse("custom_base_image", "is set but base_image is not 'custom'")
    if "\n" in ANSWERS["description"]:
        refuse("description", "must be one line")


def check_release() -> None:
    """Render release.yaml exactly as it will be written and validate it."""
    import yaml
    from cookiecutter.environment import StrictEnvironment

    source = template_dir()
    sys.dont_write_bytecode = True  # a .pyc in the template would be baked too
    # The pipeline package of this checkout (the version the bake pins), and its Jinja
    # extension as cookiecutter loads it.
    sys.path.insert(0, str(TEMPLATE))
    from kairos_distro import config

    env = StrictEnvironment(context={"cookiecutter": ANSWERS}, keep_trailing_newline=True)
    text = env.from_string((source / "release.yaml").read_text()).render(cookiecutter=ANSWERS)
    try:
        config.parse(yaml.safe_load(text))
    except config.ConfigError as err:
        # cells[2].provider_version -> provider_version; channels[0] -> channels
        field = re.sub(r"\[\d+\]", "", err.field).removeprefix("cells.")
        if not field.isidentifier():  # no field, or one no answer feeds (signing.*)
            refuse("architectures", str(err))
        if field == "base_image" and ANSWERS["base_image"] == "custom":
            refuse("custom_base_image", err.message)
        refuse(FIELD_ANSWER.get(field, field), err.message)


check_answers()
check_release()

"""The template's answers, checked before anything is baked: one AnswerError naming one answer.

cookiecutter calls `check` in-process (local_extensions), before anything is
written: when it renders its last private variable, after every answer is in,
and when it renders the project directory's name, on a replayed bake too.
The rules are the generated repo's own: release.yaml is rendered from the
answers and validated by `config`, so a refused answer and a refused
release.yaml never disagree. Nothing here echoes a value that carries a
credential: those are refused first, by name only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from . import config
from .words import show, suggest

# release.yaml field -> the answer that feeds it
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
BOOLEAN = ("trusted_boot", "fips")
# What cookiecutter's YesNoPrompt takes (cookiecutter 2.6.0 and 2.7.1,
# prompt.py): 2.7 converts such answers given on the command line to booleans,
# 2.6 passes them on as the text typed, so both spellings reach the template.
YES = frozenset({"1", "true", "t", "yes", "y", "on"})
NO = frozenset({"0", "false", "f", "no", "n", "off"})
PUBLISHER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?\Z")

# user:password@ or scheme://user@ anywhere; an @ in a reference that is not
# `@sha256:...` (a digest) is a user name at least. Checked before any message
# could show the value.
DIGEST = r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]"
USERINFO = re.compile(rf"[^\s/@:]*:[^\s/@]*@(?!{DIGEST})")
URL_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s@]*@")
REF_AT = re.compile(rf"@(?!{DIGEST})")
# Token formats of the forges and clouds a publisher is likely to paste from.
TOKEN = re.compile(
    r"gh[pousr]_[A-Za-z0-9]{20}|github_pat_[A-Za-z0-9_]{20}|glpat-[A-Za-z0-9_-]{20}"
    r"|xox[abprs]-[A-Za-z0-9-]{10}|AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY"
)
# Answers that are references (where `user:pass@` is never right) vs free text.
FREE_TEXT = ("description",)


class AnswerError(ValueError):
    """One refused answer; str() is the line users see: `answer 'x': why`."""

    def __init__(self, answer: str, message: str) -> None:
        self.answer, self.message = answer, message
        super().__init__(f"answer '{answer}': {message}")


def as_bool(value: Any) -> bool | None:
    """A yes/no answer as a boolean, or None when it is neither."""
    if isinstance(value, bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    return True if word in YES else False if word in NO else None


def carries_credential(answer: str, value: str) -> bool:
    if URL_USERINFO.search(value) or TOKEN.search(value) or USERINFO.search(value):
        return True
    return answer not in FREE_TEXT and REF_AT.search(value) is not None


def check_safe(answer: str, value: str) -> None:
    """A text answer can be shown and written: UTF-8, no credential, one printable line."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise AnswerError(answer, "is not UTF-8 text") from None
    if carries_credential(answer, value):
        hint = "; give the registry and namespace only, e.g. ghcr.io/my-org"
        raise AnswerError(
            answer,
            "carries credentials (user@, user:password@ or a token), which would be published"
            + (hint if answer == "registry" else ""),
        )
    if not value.isprintable():
        raise AnswerError(answer, f"must be one line of printable text, got {show(value)}")


def check_text(answers: Mapping[str, Any]) -> None:
    """Every visible answer is text (or yes/no) that is safe to show and to write."""
    visible = {k: v for k, v in answers.items() if not k.startswith("_")}
    for answer, value in visible.items():
        if isinstance(value, str):
            check_safe(answer, value)
    for answer, value in visible.items():
        if answer in BOOLEAN and as_bool(value) is None:
            raise AnswerError(answer, f"expected yes or no, got {show(value)}")
        if answer not in BOOLEAN and not isinstance(value, str):
            raise AnswerError(answer, "must be text")


def check_choices(answers: Mapping[str, Any], choices: Mapping[str, list[str]]) -> None:
    for answer, allowed in choices.items():
        value = answers.get(answer)
        if value not in allowed:
            listed = ", ".join(allowed)
            raise AnswerError(
                answer, f"{show(value)} is not one of {listed}{suggest(value, allowed)}"
            )


def check_own(answers: Mapping[str, Any]) -> None:
    """What release.yaml does not show: the publisher as typed, the custom base image."""
    if not PUBLISHER.match(answers["publisher"]):
        raise AnswerError(
            "publisher",
            f"{show(answers['publisher'])} is not an organisation or user name"
            " (letters, digits, '.', '_', '-')",
        )
    custom = answers["custom_base_image"].strip()
    if answers["base_image"] == "custom" and not custom:
        raise AnswerError("custom_base_image", "is required when base_image is 'custom'")
    if answers["base_image"] != "custom" and custom:
        raise AnswerError("custom_base_image", "is set but base_image is not 'custom'")


def check_release(answers: Mapping[str, Any], render: Callable[[], str]) -> None:
    """release.yaml rendered exactly as it will be written, validated by `config`."""
    try:
        config.loads(render())  # the one loader, as `invoke` reads the file
    except config.ConfigError as err:
        # cells[2].provider_version -> provider_version; channels[0] -> channels
        field = re.sub(r"\[\d+\]", "", err.field).removeprefix("cells.")
        if not field.isidentifier():  # no field, or one no answer feeds (signing.*)
            raise AnswerError("architectures", str(err)) from None
        if field == "base_image" and answers["base_image"] == "custom":
            raise AnswerError("custom_base_image", err.message) from None
        raise AnswerError(FIELD_ANSWER.get(field, field), err.message) from None


def check(
    answers: Mapping[str, Any], choices: Mapping[str, list[str]], render: Callable[[], str]
) -> None:
    """Raise AnswerError for the first refused answer; `render()` gives release.yaml."""
    check_text(answers)
    check_choices(answers, choices)
    check_own(answers)
    check_release(answers, render)

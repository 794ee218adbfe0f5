"""What may reach the Dockerfile: every value is checked or shell-quoted first, so no
requirement string, index URL or package name can add an instruction."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable

from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as PkgRequirement

from envbuild._redact import redact
from envbuild.errors import InputError
from envbuild.findings import Location

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_IMAGE_REF = re.compile(
    r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)


def unsafe(what: str, value: str, why: str, location: Location | None = None) -> InputError:
    return InputError(
        f"{what} {redact(value)!r} cannot go into a Dockerfile: {why}",
        hint="fix the value; envbuild refuses anything that could add an instruction",
        location=location,
        code="EB401",
    )


def check_text(what: str, value: str, location: Location | None = None) -> str:
    if _CONTROL.search(value):
        raise unsafe(what, value, "it contains a newline or control character", location)
    return value


def check_image(value: str, what: str = "base image") -> str:
    check_text(what, value)
    if not _IMAGE_REF.match(value):
        raise unsafe(what, value, "not an image reference (name[:tag][@sha256:digest])")
    return value


def check_requirement(raw: str, location: Location | None = None) -> PkgRequirement:
    """A requirement line that may end up in the lock or an environment file: one line,
    a valid PEP 508 requirement."""
    check_text("requirement", raw, location)
    try:
        return PkgRequirement(raw.split(" --hash", 1)[0].strip())
    except InvalidRequirement as exc:
        raise unsafe("requirement", raw, f"not a valid requirement ({exc})", location) from None


def _quote(value: object) -> str:
    text = str(value)
    check_text("value", text)
    return shlex.quote(text)


def _label(value: object) -> str:
    text = check_text("label", str(value))
    return json.dumps(text)


def _envvalue(value: object) -> str:
    return json.dumps(check_text("environment value", str(value)))


# The jinja filters the templates must use for every value they place.
FILTERS: dict[str, Callable[[object], str]] = {"q": _quote, "label": _label, "envvalue": _envvalue}

"""Pins with no wheel for the target (``Lock.source_builds``, found by resolve/wheels.py):
a throwaway builder stage on the image's own base (so the wheels fit its interpreter) adds
a compiler with apt-get, and Python's headers where the base has none, and turns the locked
sdists into wheels, hashes checked; the next stage installs those wheels, so no compiler
reaches the final image. Or, when the build may not compile anything, the
refusal that names the pins before any build starts."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from envbuild.errors import FailedError
from envbuild.findings import Code, Severity
from envbuild.render.plan import ContextFile, Secret
from envbuild.resolve.lock import Lock

EB411 = Code(
    "EB411",
    Severity.ERROR,
    "a pin has no wheel for the target and the build may not compile it",
)

WHEELS_LOCK = ".envbuild/wheels.lock"
SOURCE_LOCK = ".envbuild/source-builds.lock"

# uv's index flags (IndexPlan.install_args) and variables (Secret.env) as pip spells them
_PIP_FLAGS = {"--default-index": "--index-url", "--index": "--extra-index-url"}
_PIP_ENV = {
    "UV_DEFAULT_INDEX": "PIP_INDEX_URL",
    "UV_INDEX": "PIP_EXTRA_INDEX_URL",
    "UV_FIND_LINKS": "PIP_FIND_LINKS",
}
_PIN_START = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==")


@dataclass(frozen=True, kw_only=True)
class SourceBuilds:
    """What the Dockerfile's builder stage needs: the pins, pip's index arguments and
    secret variables, and the two lock files of the context."""

    names: tuple[str, ...]
    pip_args: tuple[tuple[str, ...], ...]
    pip_secrets: tuple[tuple[str, str], ...]  # (secret id, pip's variable)
    files: tuple[ContextFile, ...]

    def describe(self, lock: Lock) -> str:
        return ", ".join(_pinned(lock, self.names))


def _pinned(lock: Lock, names: Sequence[str]) -> list[str]:
    return [f"{p.name}=={p.version}" for n in names if (p := lock.pin(n)) is not None]


def split_lock(text: str, names: Collection[str]) -> tuple[str, str]:
    """The lock text without the pin blocks (``name==version``, its ``--hash`` and
    ``# via`` lines) of ``names``, and those blocks: both still hash-pinned lock files."""
    keep: list[str] = []
    moved: list[str] = []
    into = keep
    for line in text.splitlines(keepends=True):
        match = _PIN_START.match(line)
        if match:
            into = moved if canonicalize_name(match["name"]) in names else keep
        elif not line[:1].isspace():
            into = keep  # a header or option line
        into.append(line)
    return "".join(keep), "".join(moved)


def source_builds(
    lock: Lock,
    lock_text: str,
    *,
    install_args: Sequence[tuple[str, ...]],
    secrets: Sequence[Secret],
) -> SourceBuilds | None:
    """The builder stage for ``lock.source_builds`` (None when every pin has a wheel).
    ``lock_text`` is the lock as the context carries it (index options moved out)."""
    if not lock.source_builds:
        return None
    wheels, sources = split_lock(lock_text, set(lock.source_builds))
    header = (
        "# envbuild: the locked pins with no wheel for the target, built into wheels in the "
        "builder stage\n"
    )
    pip_args = tuple(
        (_PIP_FLAGS.get(arg[0], arg[0]), *arg[1:])
        for arg in install_args
        if arg
        and arg[0] in (*_PIP_FLAGS, "--find-links")
        and not (len(arg) > 1 and arg[1].startswith("/tmp/envbuild/"))
    )
    return SourceBuilds(
        names=lock.source_builds,
        pip_args=pip_args,
        pip_secrets=tuple((s.id, _PIP_ENV[s.env]) for s in secrets if s.env in _PIP_ENV),
        files=(
            ContextFile(path=WHEELS_LOCK, data=wheels.encode()),
            ContextFile(path=SOURCE_LOCK, data=(header + sources).encode()),
        ),
    )


def refuse_source_builds(lock: Lock, why: str) -> FailedError:
    """The error for pins that would build from source where the build may not (``why``:
    the option that forbids it), said before anything is downloaded or built."""
    pins = _pinned(lock, lock.source_builds)
    return FailedError(
        f"{', '.join(pins)} {'has' if len(pins) == 1 else 'have'} no wheel for "
        f"{lock.target.describe()} and {why}",
        hint="pin releases with wheels for the target (see EB350 in `envbuild check`), or "
        "drop the option: `envbuild image` then compiles them in a throwaway builder stage",
        code=EB411.code,
    )

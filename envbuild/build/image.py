"""The image: build the planned context (docker SDK or BuildKit, via envbuild/_adapters/docker.py),
prove it with the smoke test, and only then tag it."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild._adapters import buildkit as _buildkit
from envbuild._adapters import docker as _docker
from envbuild.build.context import context_tar, write_context
from envbuild.build.smoke import SmokeResult, smoke_image
from envbuild.errors import FailedError
from envbuild.read import ModelFolder
from envbuild.render import BuildPlan

log = logging.getLogger("envbuild")


@dataclass(frozen=True, kw_only=True)
class BuiltImage:
    id: str
    tags: tuple[str, ...]  # applied only once the proof passed (or with --no-smoke)
    size: int
    layers: tuple[str, ...]
    seconds: float
    smoke: SmokeResult | None  # None: built with --no-smoke, not proven
    builder: str  # "buildkit" or "legacy"
    pushed: tuple[tuple[str, str], ...] = ()  # (name, manifest digest) per pushed tag

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "tag": self.tags[0] if self.tags else None,
            "tags": list(self.tags),
            "proven": self.smoke is not None and self.smoke.ok,
            "size": self.size,
            "layers": len(self.layers),
            "seconds": round(self.seconds, 2),
            "builder": self.builder,
        }
        if self.pushed:
            doc["digest"] = self.pushed[0][1]
            doc["pushed"] = [{"name": n, "digest": d} for n, d in self.pushed]
        return doc


def build_image(
    plan: BuildPlan,
    folder: ModelFolder,
    *,
    tags: Sequence[str] = (),
    smoke: bool = True,
    keep_failed: bool = False,
    network_mode: str | None = None,
    buildkit: _buildkit.BuildKitCli | None = None,
    push: bool = False,
    client: _docker.DockerClient | None = None,
) -> BuiltImage:
    """Build ``plan`` untagged (through ``buildkit`` when the plan was rendered for it,
    else the SDK's classic builder), prove it with ``smoke_image``, and only then give it
    ``tags`` (and with ``push`` push each). When the proof fails (or is interrupted) the
    image is removed, or with ``keep_failed`` named ``NAME:TAG-failed``; a name that
    pointed at an older image keeps pointing there. Without ``smoke`` the tags are applied
    right after the build."""
    c = client or _docker.client()
    for name in tags:
        _docker.check_tag(name)
    start = time.monotonic()
    if plan.buildkit:
        import tempfile

        if buildkit is None:
            raise ValueError("a plan rendered for BuildKit needs a BuildKit CLI")
        with tempfile.TemporaryDirectory(prefix="envbuild-context-") as tmp:
            write_context(plan, Path(tmp))
            image_id = _buildkit.build(
                buildkit,
                Path(tmp),
                secrets={s.id: s.value for s in plan.secrets},
                network_mode=network_mode,
            )
    else:
        image_id = _docker.build(c, context_tar(plan), tag=None, network_mode=network_mode)
    seconds = time.monotonic() - start
    info = _docker.inspect(c, image_id)
    smoked: SmokeResult | None = None
    if smoke:
        try:
            smoked = smoke_image(info.id, folder, client=c)
        except BaseException as exc:
            where = _set_aside(c, info.id, tags[0] if tags else None, keep=keep_failed)
            if isinstance(exc, FailedError):
                raise FailedError(
                    f"{exc.message}; {where}", hint=exc.hint, location=exc.location, code=exc.code
                ) from None
            raise
    for name in tags:
        _docker.add_tag(c, info.id, name)
    pushed = tuple((name, _docker.push(c, name)) for name in tags) if push else ()
    return BuiltImage(
        id=info.id, tags=tuple(tags), size=info.size, layers=info.layers, seconds=seconds,
        smoke=smoked, builder="buildkit" if plan.buildkit else "legacy", pushed=pushed,
    )  # fmt: skip


# The Dockerfile step that copies the model (block_runtime): a failed image is removed
# down to it, and the dependency layers below stay cached for the next build.
MODEL_STEP = " in /opt/envbuild/model"


def _set_aside(c: _docker.DockerClient, image_id: str, name: str | None, *, keep: bool) -> str:
    """Dispose of an image whose proof failed; say what became of it."""
    short = image_id.removeprefix("sha256:")[:12]
    if keep:
        failed = _docker.failed_name(name, image_id)
        _docker.add_tag(c, image_id, failed)
        log.warning("the image that failed its smoke test is kept as %s", failed)
        return f"nothing was tagged; the image ({short}) is kept as {failed}"
    if _docker.discard_untagged(c, image_id, down_to=MODEL_STEP):
        return f"nothing was tagged; the image ({short}) was removed (--keep-failed keeps it)"
    return f"nothing was tagged; the image ({short}) stays: another name or container uses it"

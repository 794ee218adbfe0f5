"""``envbuild show``: the command's orchestration of the stages and its result type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.api._common import ModelLocation, _source
from envbuild.contents import Contents, select
from envbuild.findings import Finding, exit_code_for
from envbuild.read import ModelFolder, read_model
from envbuild.sources import ModelSource


@dataclass(frozen=True, kw_only=True)
class ShowResult:
    source: ModelSource
    folder: ModelFolder
    files: Contents

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(self.folder.findings)

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.folder.to_json(),
            "files": self.files.to_json(),
            "source": self.source.provenance(),
        }


def show(
    model: ModelLocation,
    *,
    env_from: str = "auto",
    exclude: Sequence[str] = (),
    allow_files: Sequence[str] = (),
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> ShowResult:
    """What envbuild reads from ``model`` (nothing is loaded or run), and which of its
    files an image would carry."""
    source = _source(
        model, tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )
    folder = read_model(source.path, env_from=env_from)
    return ShowResult(
        source=source,
        folder=folder,
        files=select(folder, exclude=exclude, allow_files=allow_files),
    )

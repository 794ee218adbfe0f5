"""What every command of the library API shares: the model location type and how it
becomes a local folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from envbuild.sources import ModelSource, materialize

log = logging.getLogger("envbuild")


ModelLocation = str | os.PathLike[str] | ModelSource


def _source(
    model: ModelLocation,
    *,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> ModelSource:
    if isinstance(model, ModelSource):
        return model
    return materialize(
        os.fspath(model), tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )

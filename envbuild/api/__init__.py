"""The library API: what each command does, callable from Python.

Every function takes a model folder or URI (``runs:/``, ``models:/``, an artifact URI) and
keyword options, and returns a frozen result whose ``to_json()`` is the ``result`` of the
command's JSON envelope, with its ``findings`` and ``exit_code``. Problems that stop a
command raise ``envbuild.errors.EnvbuildError`` (its ``exit_code`` says which kind). The
library never prints; progress goes to the ``envbuild`` logger.

One module per command (show, lock, infer, check, image, venv), each the command's
orchestration of the stage packages and its result type; the stages themselves live in
their packages.

    >>> from envbuild import api
    >>> shown = api.show("examples/sklearn-credit")
    >>> shown.folder.mlmodel.flavors[0].name
    'python_function'
"""

from __future__ import annotations

from envbuild.api._check import check
from envbuild.api._common import ModelLocation
from envbuild.api._image import ImageResult, image
from envbuild.api._infer import InferResult, infer
from envbuild.api._lock import LockResult, lock
from envbuild.api._show import ShowResult, show
from envbuild.api._venv import VenvBuildResult, venv

__all__ = [
    "ImageResult",
    "InferResult",
    "LockResult",
    "ModelLocation",
    "ShowResult",
    "VenvBuildResult",
    "check",
    "image",
    "infer",
    "lock",
    "show",
    "venv",
]

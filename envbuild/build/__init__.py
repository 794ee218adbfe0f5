"""Build what render planned: a Docker image (docker SDK, via envbuild/_adapters/docker.py) or a
virtualenv (uv); then prove it with a smoke prediction on the model's input example.

context.py the build context, wheelhouse.py the wheels for the target, image.py the image
and its proof-then-tag flow, smoke.py the smoke test, venv.py the virtualenv, lock.py the
lock from the resolver. The library never prints: build progress goes to the ``envbuild``
logger.
"""

from __future__ import annotations

from envbuild._adapters import docker as _docker
from envbuild.build.context import FIXED_MTIME, context_tar, write_context
from envbuild.build.image import BuiltImage, build_image
from envbuild.build.lock import host_platform, lock_for
from envbuild.build.smoke import (
    EB806,
    SmokeCase,
    SmokeResult,
    check_response,
    compare,
    sandbox_for,
    smoke_case,
    smoke_image,
    smoke_venv,
)
from envbuild.build.venv import (
    EB808,
    VenvResult,
    copy_server,
    find_python,
    host_findings,
    install_venv,
    model_fingerprint,
    pyenv_versions,
    read_stamp,
    stamp_matches,
    write_stamp,
)
from envbuild.build.wheelhouse import download_wheelhouse
from envbuild.contents import human_size
from envbuild.findings import Code, Severity, table

__all__ = [
    "CODES",
    "FIXED_MTIME",
    "BuiltImage",
    "SmokeCase",
    "SmokeResult",
    "VenvResult",
    "build_image",
    "check_response",
    "compare",
    "context_tar",
    "copy_server",
    "download_wheelhouse",
    "find_python",
    "host_findings",
    "host_platform",
    "human_size",
    "install_venv",
    "lock_for",
    "model_fingerprint",
    "pyenv_versions",
    "read_stamp",
    "sandbox_for",
    "smoke_case",
    "smoke_image",
    "smoke_venv",
    "stamp_matches",
    "write_context",
    "write_stamp",
]

EB803 = Code("EB803", Severity.ERROR, "downloading the wheelhouse for the target platform failed")
EB804 = Code("EB804", Severity.ERROR, "installing the lock into the virtualenv failed")
EB805 = Code(
    "EB805",
    Severity.ERROR,
    "--output names a folder that is not empty and was not written by envbuild",
)
EB902 = Code(
    "EB902", Severity.ERROR, "no Python interpreter of the version the model needs on this machine"
)
CODES: dict[str, str] = {
    **table(EB803, EB804, EB805, EB806, EB808, EB902),
    **_docker.CODES,
}

"""What the lock and the model say about the image they need: a CUDA runtime, a conda
environment, shared libraries from apt, and which modules to import at build time.

PyPI's CUDA wheels (torch's ``nvidia-*-cu1x`` dependencies, xgboost's
``nvidia-nccl-cu12``) carry their own CUDA libraries and run on ``python:X.Y-slim`` under
the NVIDIA container runtime, so they do not choose the base; ``SYSTEM_CUDA`` names the
packages that load CUDA from the system instead, and ``--gpu`` asks for the CUDA runtime
base for any lock."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from envbuild.flavors import SYSTEM_PACKAGES
from envbuild.read import CondaDep, ModelFolder
from envbuild.render.safety import unsafe
from envbuild.resolve.lock import Pin

# Distributions whose wheels load CUDA from the system (not from nvidia-* wheels), so they
# need NVIDIA's CUDA runtime base; with the reason, shown when that base is chosen.
SYSTEM_CUDA: dict[str, str] = {
    "onnxruntime-gpu": "links against the system's CUDA and cuDNN libraries (libcudart, "
    "libcublas, libcudnn), which its wheel does not carry",
    "tensorflow-gpu": "TensorFlow's legacy GPU package loads CUDA and cuDNN from the system",
    "paddlepaddle-gpu": "loads CUDA and cuDNN from the system",
    "cupy-cuda11x": "CuPy loads the CUDA runtime, NVRTC and cuBLAS from the system toolkit",
    "cupy-cuda12x": "CuPy loads the CUDA runtime, NVRTC and cuBLAS from the system toolkit",
}
_SYSTEM_CUDA_MAJOR = {"cupy-cuda11x": "11.8", "tensorflow-gpu": "11.8"}
_APT_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


def cuda_version(pins: Iterable[Pin]) -> tuple[str, tuple[str, ...]] | None:
    """The CUDA X.Y the lock's builds need, and the pins that say so."""
    evidence: list[str] = []
    found: str | None = None
    for pin in pins:
        local = str(pin.version).partition("+")[2]
        m = re.fullmatch(r"cu(\d+)(\d)", local)
        if m and pin.name in ("torch", "torchvision", "torchaudio", "tensorflow", "jax", "jaxlib"):
            found = found or f"{m[1]}.{m[2]}"
            evidence.append(f"{pin.name}=={pin.version}")
    if found is None:
        for pin in pins:
            if re.fullmatch(r"nvidia-cuda-runtime(-cu1\d)?", pin.name):
                v = pin.version
                found = f"{v.major}.{v.minor}"
                evidence.append(f"{pin.name}=={pin.version}")
        if found is None and any(re.fullmatch(r"nvidia-.*-cu1[12]", p.name) for p in pins):
            major = "12" if any(p.name.endswith("-cu12") for p in pins) else "11"
            found = "12.1" if major == "12" else "11.8"
            evidence.extend(
                f"{p.name}=={p.version}" for p in pins if re.fullmatch(r"nvidia-.*-cu1[12]", p.name)
            )
    return (found, tuple(evidence[:3])) if found else None


def system_cuda(pins: Iterable[Pin]) -> tuple[tuple[str, str], ...]:
    """The locked packages that need the system's CUDA, each with the reason."""
    return tuple((p.name, SYSTEM_CUDA[p.name]) for p in pins if p.name in SYSTEM_CUDA)


def cuda_for_base(pins: Sequence[Pin]) -> tuple[str, tuple[str, ...]]:
    """The CUDA X.Y of the runtime base (--gpu or SYSTEM_CUDA): the lock's CUDA builds,
    else what the system-CUDA package expects, else CUDA 12.1."""
    found = cuda_version(pins)
    if found is not None:
        return found
    for name, _ in system_cuda(pins):
        return _SYSTEM_CUDA_MAJOR.get(name, "12.1"), (name,)
    return "12.1", ()


def conda_only(deps: Sequence[CondaDep]) -> tuple[CondaDep, ...]:
    return tuple(d for d in deps if d.name not in ("python", "pip"))


def system_packages(pins: Iterable[Pin]) -> tuple[str, ...]:
    out: set[str] = set()
    for pin in pins:
        out.update(SYSTEM_PACKAGES.get(pin.name, ()))
    for name in out:
        if not _APT_NAME.match(name):  # pragma: no cover - the table is ours
            raise unsafe("system package", name, "not a Debian package name")
    return tuple(sorted(out))


def warm_imports(folder: ModelFolder) -> tuple[str, ...]:
    """The modules whose import at build time writes the deferred runtime's bytecode:
    those the server imports at start, and the model flavor's pyfunc loader."""
    from envbuild.serve.protocol import MLFLOW_MODULES

    loader = folder.mlmodel.pyfunc.loader_module if folder.mlmodel.pyfunc else None
    modules = list(MLFLOW_MODULES)
    if loader and _MODULE.match(loader) and loader not in modules:
        modules.append(loader)
    return tuple(modules)

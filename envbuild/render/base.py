"""The build path and base image of a render: python:X.Y-slim by default (PyPI's CUDA
wheels carry their own libraries), NVIDIA's CUDA runtime with --gpu or for packages that
load the system's CUDA, micromamba for conda-only packages, or the base a user or workspace
names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from envbuild.findings import Code, Finding, Location, Severity
from envbuild.read import CondaDep, WorkspaceEnv
from envbuild.render.detect import conda_only, cuda_for_base, cuda_version, system_cuda
from envbuild.render.plan import BuildKind
from envbuild.render.safety import check_image
from envbuild.resolve.lock import Pin

EB404 = Code(
    "EB404",
    Severity.INFO,
    "the environment names conda-only packages: the micromamba path is rendered",
)
EB405 = Code(
    "EB405",
    Severity.INFO,
    "a CUDA runtime base image is rendered (--gpu, or a package that needs the system's CUDA)",
)
EB406 = Code(
    "EB406",
    Severity.INFO,
    "the workspace environment's base image replaces the python:X.Y-slim default",
)
EB412 = Code(
    "EB412",
    Severity.INFO,
    "the lock pins CUDA wheels, which carry their own libraries: the slim base serves them",
)

MICROMAMBA_IMAGE = "mambaorg/micromamba:1.5.10-bookworm-slim"
CONDA_RUNTIME_IMAGE = "debian:bookworm-slim"
# CUDA X.Y -> the newest runtime image tag of that minor version (Ubuntu 22.04).
CUDA_IMAGES: dict[str, str] = {
    "11.7": "11.7.1",
    "11.8": "11.8.0",
    "12.0": "12.0.1",
    "12.1": "12.1.1",
    "12.2": "12.2.2",
    "12.3": "12.3.2",
    "12.4": "12.4.1",
    "12.5": "12.5.1",
    "12.6": "12.6.3",
    "12.8": "12.8.1",
    "12.9": "12.9.1",
    "13.0": "13.0.2",
}


@dataclass(frozen=True, kw_only=True)
class Base:
    """The build path and its base image, and how uv finds the image's Python."""

    kind: BuildKind
    image: str
    python_source: str
    cuda: tuple[str, tuple[str, ...]] | None
    cuda_reason: str  # --gpu, or the packages that need the system's CUDA
    conda: tuple[CondaDep, ...]
    findings: tuple[Finding, ...]


def choose_base(
    pins: Sequence[Pin],
    python_xy: str,
    conda_deps: Sequence[CondaDep],
    *,
    base_image: str | None,
    override: WorkspaceEnv | None,
    gpu: bool,
) -> Base:
    """The build path (pip, CUDA, conda) and its base image: ``python:X.Y-slim`` unless the
    environment has conda-only packages (micromamba), ``gpu`` or a package that loads the
    system's CUDA asks for NVIDIA's runtime base, or the user or workspace names one."""
    findings: list[Finding] = []
    wheels = cuda_version(pins)
    needs_system = system_cuda(pins)
    cuda = cuda_for_base(pins) if gpu or needs_system else None
    conda = conda_only(conda_deps)
    kind = BuildKind.PIP
    default_base = f"python:{python_xy}-slim"
    python_source = "only-system"
    if conda:
        kind = BuildKind.CONDA
        default_base = CONDA_RUNTIME_IMAGE
        findings.append(
            EB404.at(
                conda[0].location,
                "conda-only packages "
                + ", ".join(sorted(d.name for d in conda))
                + ": rendering the micromamba path (needs a conda channel to build)",
            )
        )
    elif cuda:
        kind = BuildKind.CUDA
        tag_version = CUDA_IMAGES.get(cuda[0], f"{cuda[0]}.0")
        default_base = f"nvidia/cuda:{tag_version}-runtime-ubuntu22.04"
        python_source = "only-managed"
        why = (
            "; ".join(f"{name} {reason}" for name, reason in needs_system)
            if needs_system
            else "--gpu"
        )
        findings.append(
            EB405.at(
                Location(field="--gpu") if not needs_system else Location(),
                f"base image {default_base} (CUDA {cuda[0]}"
                + (f": {', '.join(cuda[1])}" if cuda[1] else "")
                + f"): {why}",
            )
        )
    elif wheels:
        findings.append(
            EB412.at(
                Location(),
                f"CUDA {wheels[0]} wheels in the lock ({', '.join(wheels[1])}) carry their "
                f"own CUDA libraries: base image {default_base}, which serves them on a GPU "
                "under the NVIDIA container runtime",
                hint="--gpu renders NVIDIA's CUDA runtime base; --torch cpu locks torch's "
                "CPU build for a small CPU image",
            )
        )
    chosen = base_image or (override.image if override is not None else None) or default_base
    check_image(chosen)
    if override is not None and override.image and not base_image:
        findings.append(
            EB406.at(
                Location(file=override.file, field="image"),
                f"base image {override.image} from {override.file}",
            )
        )
    if chosen != default_base and kind is BuildKind.PIP:
        # a base of the user's choosing may not carry the model's Python: let uv fetch one
        python_source = "system"
    return Base(
        kind=kind,
        image=chosen,
        python_source=python_source,
        cuda=cuda if kind is BuildKind.CUDA else None,
        cuda_reason=("--gpu" if gpu else ", ".join(n for n, _ in needs_system)) if cuda else "",
        conda=conda,
        findings=tuple(findings),
    )

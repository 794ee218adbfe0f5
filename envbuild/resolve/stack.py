"""What the resolver adds beside the model's own lines: the serving stack's findings (one
MLflow, ``mlflow_version`` as a preference, ``mlflow`` served as ``mlflow-skinny``) and the
torch build (``--torch cpu``: torch's CPU wheels from ``--find-links`` or the PyTorch CPU
index; the suggestion when a CUDA build would be pulled for a model that shows no GPU use).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.requirements import Requirement as PkgRequirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from envbuild.findings import Code, Finding, Location, Severity, table
from envbuild.read import ModelFolder, ReqKind, Requirement
from envbuild.resolve.lock import Pin
from envbuild.resolve.target import Target

EB316 = Code(
    "EB316",
    Severity.INFO,
    "a declared mlflow is served as mlflow-skinny of the same version (--mlflow full keeps it)",
)
EB317 = Code(
    "EB317",
    Severity.INFO,
    "MLmodel's mlflow_version conflicts with the model's requirements: it is not pinned",
)
EB318 = Code(
    "EB318",
    Severity.INFO,
    "torch from the index is a CUDA build, and the model shows no GPU use (--torch cpu)",
)
EB319 = Code(
    "EB319",
    Severity.INFO,
    "torch's CPU build (--torch cpu, or a +cpu pin): where it comes from (--find-links or "
    "the PyTorch CPU index)",
)
CODES: dict[str, str] = table(EB316, EB317, EB318, EB319)

# --torch: the index's build (PyPI's Linux torch is a CUDA build), or the CPU build
TorchChoice = Literal["default", "cpu"]
TORCH_CHOICES: tuple[TorchChoice, ...] = ("default", "cpu")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# the PyTorch packages whose CPU builds carry the +cpu local label
TORCH_FAMILY = ("torch", "torchvision", "torchaudio")

_ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


# --------------------------------------------------------------------------------------
# MLflow


def skinny_served(old: Requirement, new: Requirement) -> Finding:
    return EB316.at(
        old.location,
        f"{old.raw!r} is served by {new.raw!r}: the same loader, without full MLflow's "
        "Flask, SQLAlchemy, matplotlib, ..., which nothing in the model needs",
        hint="--mlflow full keeps the declared mlflow",
    )


def kept_full(old: Requirement, needs: Iterable[str]) -> Finding:
    names = ", ".join(sorted(needs))
    return EB316.at(
        old.location,
        f"{old.raw!r} stays full mlflow: the model needs {names}, which only full MLflow's "
        "dependencies bring",
        hint=f"declare {names} in the model's requirements to serve it with mlflow-skinny",
    )


def preference_dropped(preferred: Requirement, locked: Pin | None, why: str) -> Finding:
    got = f"; the lock has {locked.name} {locked.version}" if locked else ""
    return EB317.at(
        Location(file="MLmodel", field="mlflow_version"),
        f"{preferred.raw} (MLmodel's mlflow_version) cannot be installed with the model's "
        f"requirements ({why}){got}",
        hint="pin mlflow in the model's requirements to choose the version yourself",
    )


def missing_without_full(needed: Iterable[str], pins: Sequence[Pin]) -> set[str]:
    """The distributions the model needs that a lock without full mlflow lacks."""
    names = {p.name for p in pins}
    return {n for n in needed if canonicalize_name(n) not in names}


# --------------------------------------------------------------------------------------
# torch


@dataclass(frozen=True, kw_only=True)
class TorchPlan:
    """How ``--torch cpu`` reaches the resolver: ``==V+cpu`` constraints for the CPU wheels
    in local --find-links folders, else uv's PyTorch CPU index (``backend``)."""

    constraints: tuple[Requirement, ...] = ()
    backend: str | None = None
    findings: tuple[Finding, ...] = ()


def _cpu_wheels(links: Iterable[Path], target: Target) -> dict[str, list[tuple[Version, Path]]]:
    arch = _ARCH.get(target.platform, "")
    interpreters = {f"cp{target.python.major}{target.python.minor}", "py3"}
    out: dict[str, list[tuple[Version, Path]]] = {}
    for folder in links:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.whl")):
            try:
                name, version, _, tags = parse_wheel_filename(path.name)
            except InvalidWheelFilename:
                continue
            if name not in TORCH_FAMILY or version.local != "cpu":
                continue
            if any(
                t.interpreter in interpreters and (arch in t.platform or t.platform == "any")
                for t in tags
            ):
                out.setdefault(str(name), []).append((version, path))
    return out


def declared_cpu_build(reqs: Sequence[Requirement]) -> Requirement | None:
    """The first PyTorch requirement pinned to a ``+cpu`` build (MLflow records the training
    venv's ``torch==2.13.0+cpu``): the author's own choice of the CPU build."""
    for r in reqs:
        version = r.pinned_version or ""
        if r.name in TORCH_FAMILY and version.partition("+")[2] == "cpu":
            return r
    return None


def torch_plan(
    choice: TorchChoice, reqs: Sequence[Requirement], links: Iterable[Path], target: Target
) -> TorchPlan:
    findings: list[Finding] = []
    if choice != "cpu":
        declared = declared_cpu_build(reqs)
        if declared is None:
            return TorchPlan()
        findings.append(
            EB319.at(
                declared.location,
                f"{declared.raw} is torch's CPU build (+cpu, which PyPI never has): "
                "resolved as --torch cpu does",
            )
        )
    wanted = {r.name: r.requirement for r in reqs if r.name in TORCH_FAMILY and r.requirement}
    wheels = _cpu_wheels(links, target)
    constraints: list[Requirement] = []
    for name, found in sorted(wheels.items()):
        spec = wanted.get(name)
        usable = [
            (v, p) for v, p in found if spec is None or spec.specifier.contains(v, prereleases=True)
        ]
        if not usable:
            continue
        version, path = max(usable)
        text = f"{name}=={version}"
        constraints.append(
            Requirement(
                raw=text,
                kind=ReqKind.NAMED,
                requirement=PkgRequirement(text),
                location=Location(file=str(path.parent), field="--torch cpu"),
                reasons=("--torch cpu: the CPU build from --find-links",),
            )
        )
        findings.append(
            EB319.at(
                Location(field="--torch"),
                f"{name} {version} (CPU build) from {path}",
            )
        )
    if "torch" in {c.name for c in constraints}:
        return TorchPlan(constraints=tuple(constraints), findings=tuple(findings))
    findings.append(
        EB319.at(
            Location(field="--torch"),
            f"torch's CPU build from the PyTorch CPU index ({TORCH_CPU_INDEX}): no "
            "torch-*+cpu wheel for the target in --find-links",
            hint="where that index cannot be reached, pass --find-links DIR holding the "
            "torch-*+cpu wheels",
        )
    )
    return TorchPlan(constraints=tuple(constraints), backend="cpu", findings=tuple(findings))


def cpu_index_links(pins: Iterable[Pin], local: Iterable[str]) -> tuple[str, ...]:
    """The lock's --find-links pages for the +cpu pins the PyTorch CPU index gave (a
    find-links page, not an extra index: an extra index would shadow PyPI's numpy)."""
    taken = {canonicalize_name(n) for n in local}
    return tuple(
        f"{TORCH_CPU_INDEX}/{p.name}/"
        for p in pins
        if p.name in TORCH_FAMILY and p.version.local == "cpu" and p.name not in taken
    )


def _nvidia(pins: Sequence[Pin]) -> list[Pin]:
    return [p for p in pins if p.name.startswith("nvidia-") or p.name in ("triton", "cuda-toolkit")]


_GPU_TEXT = re.compile(rb"\bcuda\b|\.cuda\(|cuda:\d", re.IGNORECASE)
_SOURCE_SUFFIXES = (".py", ".yaml", ".yml", ".json")


def gpu_evidence(folder: ModelFolder) -> str | None:
    """Static signs that the model uses a GPU: a flavor trained with a CUDA build (a
    ``+cu121`` local label), a ``device`` setting naming cuda in MLmodel, or code, config
    or a torch archive's pickle naming a cuda device. Nothing is loaded."""
    for flavor in folder.mlmodel.flavors:
        if flavor.version and re.search(r"\+cu\d+", flavor.version):
            return f"MLmodel: {flavor.name} was written by {flavor.library} {flavor.version}"
        device = flavor.params.get("device") or (flavor.params.get("config") or {})
        if isinstance(device, dict):
            device = device.get("device")
        if isinstance(device, str) and "cuda" in device.lower():
            return f"MLmodel: flavors.{flavor.name} device {device}"
    root = folder.path
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.stat().st_size > 4 << 20:
            continue
        rel = path.relative_to(root).as_posix()
        if rel in ("MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml"):
            continue
        if path.suffix in _SOURCE_SUFFIXES and _GPU_TEXT.search(path.read_bytes()):
            return rel
        if path.suffix in (".pt", ".pth", ".pt2", ".zip", ".bin"):
            try:
                with zipfile.ZipFile(path) as zf:
                    for info in zf.infolist():
                        small_pickle = info.filename.endswith(".pkl") and info.file_size < 4 << 20
                        if small_pickle and b"cuda" in zf.read(info):
                            return f"{rel}:{info.filename}"
            except (zipfile.BadZipFile, OSError):
                continue
    return None


def cuda_torch_finding(
    folder: ModelFolder,
    pins: Sequence[Pin],
    *,
    declared: Sequence[Requirement] = (),
    needed: Callable[[], set[str]] | None = None,
) -> Finding | None:
    """EB318 when the lock's torch is a CUDA build and the model shows no GPU use; not for
    a declared torch nothing in the model needs (EB231 says to remove it)."""
    torch = next((p for p in pins if p.name == "torch"), None)
    nvidia = _nvidia(pins)
    if torch is None or torch.version.local == "cpu" or not nvidia:
        return None
    if needed is not None and any(r.name == "torch" for r in declared) and "torch" not in needed():
        return None
    evidence = gpu_evidence(folder)
    if evidence is not None:
        return None
    trained = next(
        (f.version for f in folder.mlmodel.flavors if f.library == "torch" and f.version), None
    )
    with_trained = f" (trained with torch {trained})" if trained else ""
    return EB318.at(
        Location(),
        f"torch {torch.version} from the index is a CUDA build: the lock pins {len(nvidia)} "
        f"nvidia-* packages (gigabytes), and nothing in the model shows GPU use{with_trained}",
        hint="--torch cpu resolves torch's CPU build (from the PyTorch CPU index, or "
        "--find-links DIR holding torch-*+cpu wheels) for a small image",
    )

"""What goes into the serving environment (issue #14 causes 1, 2 and 10), offline: one
MLflow per environment (the declaration, mlflow_version as a preference), a declared
mlflow served as mlflow-skinny, --torch cpu from --find-links, and the GPU evidence that
decides the --torch cpu suggestion. Real corpus folders written by MLflow."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from packaging.version import Version

from envbuild.check.settings import load_settings, options_from
from envbuild.errors import InputError
from envbuild.read import read_model
from envbuild.resolve.lock import Pin
from envbuild.resolve.stack import cpu_index_links, cuda_torch_finding, gpu_evidence, torch_plan
from envbuild.resolve.target import target_for
from envbuild.serving import serving_stack
from tests.helpers import ROOT

CORPUS = ROOT / "tests" / "corpus" / "models"
BARE = CORPUS / "mlflow2.9.2-py3.9-sklearn-pickle-bare-mlflow"
XGB = CORPUS / "mlflow2.9.2-py3.9-xgboost-sklearn"
TORCH = CORPUS / "mlflow3.17.2-py3.11-pytorch-torch-unpinned"
# the machine's CPU build of torch (the PyTorch CPU index is not reachable from here)
CPU_WHEELS = Path("/opt/wheels")


def _raws(reqs) -> list[str]:
    return [r.raw for r in reqs]


def test_bare_mlflow_is_served_by_skinny_with_the_model_version_preferred() -> None:
    folder = read_model(BARE)
    reqs = list(folder.env.spec.requirements)
    stack = serving_stack(folder.mlmodel.mlflow_version, reqs)
    ((old, new),) = stack.swapped
    assert (old.raw, new.raw, str(new.location)) == (
        "mlflow",
        "mlflow-skinny",
        "requirements.txt:1",
    )
    assert stack.preferred is not None and stack.preferred.raw == "mlflow-skinny==2.9.2"
    first = _raws(stack.lines(reqs, prefer=True))
    # one MLflow distribution goes to the resolver, whatever the attempt
    assert [r for r in first if r.startswith("mlflow")] == ["mlflow-skinny", "mlflow-skinny==2.9.2"]
    second = _raws(stack.lines(reqs, prefer=False))
    assert [r for r in second if r.startswith("mlflow")] == ["mlflow-skinny"]


def test_mlflow_full_keeps_the_declared_distribution() -> None:
    folder = read_model(BARE)
    reqs = list(folder.env.spec.requirements)
    stack = serving_stack(folder.mlmodel.mlflow_version, reqs, mlflow="full")
    assert not stack.swapped
    assert stack.preferred is not None and stack.preferred.raw == "mlflow==2.9.2"
    assert [r for r in _raws(stack.lines(reqs, prefer=True)) if r.startswith("mlflow")] == [
        "mlflow",
        "mlflow==2.9.2",
    ]


def test_a_pin_other_than_mlflow_version_is_the_one_mlflow(tmp_path: Path) -> None:
    """requirements pin mlflow==2.14.3, MLmodel says 2.9.2: no second MLflow is added, and
    the model's own pin is not contradicted by a preference."""
    model = tmp_path / BARE.name
    shutil.copytree(BARE, model)
    req = model / "requirements.txt"
    req.write_text(req.read_text().replace("mlflow\n", "mlflow==2.14.3\n", 1))
    folder = read_model(model)
    reqs = list(folder.env.spec.requirements)
    for choice, want in (("skinny", "mlflow-skinny==2.14.3"), ("full", "mlflow==2.14.3")):
        stack = serving_stack(folder.mlmodel.mlflow_version, reqs, mlflow=choice)  # type: ignore[arg-type]
        assert stack.preferred is None
        lines = _raws(stack.lines(reqs, prefer=True))
        assert [r for r in lines if r.startswith("mlflow")] == [want]


def test_no_declared_mlflow_prefers_the_model_version_and_falls_back_to_later_ones() -> None:
    folder = read_model(XGB)
    stack = serving_stack(folder.mlmodel.mlflow_version, [])
    assert stack.preferred is not None and stack.preferred.raw == "mlflow-skinny==2.9.2"
    assert _raws(stack.lines([], prefer=False)) == [
        "mlflow-skinny>=2.9.2",
        "pandas",
        "numpy",
        "setuptools<81",  # MLflow 2.9.2 imports pkg_resources
    ]
    # MLflow 3 imports no pkg_resources: no setuptools
    torch = read_model(TORCH)
    reqs = list(torch.env.spec.requirements)
    assert not [
        r
        for r in _raws(serving_stack("3.17.2", reqs).lines(reqs, prefer=True))
        if "setuptools" in r
    ]


def test_torch_cpu_takes_the_cpu_wheel_from_find_links() -> None:
    folder = read_model(TORCH)
    target, _ = target_for(folder)
    plan = torch_plan("cpu", folder.env.spec.requirements, [CPU_WHEELS], target)
    assert plan.backend is None
    assert [c.raw for c in plan.constraints] == ["torch==2.13.0+cpu"]
    assert [f.code for f in plan.findings] == ["EB319"]
    # no CPU wheel for the target (Python 3.12): uv's PyTorch CPU index, said so
    other, _ = target_for(folder, python_version="3.12")
    fallback = torch_plan("cpu", folder.env.spec.requirements, [CPU_WHEELS], other)
    assert fallback.backend == "cpu" and not fallback.constraints
    assert "--find-links" in (fallback.findings[0].hint or "")
    assert (
        torch_plan("default", folder.env.spec.requirements, [CPU_WHEELS], target).constraints == ()
    )


def test_a_cpu_pin_is_resolved_as_torch_cpu_without_the_flag() -> None:
    """MLflow 3.17 recorded its training venv's torch==2.13.0+cpu (a local version PyPI
    never has): the default resolves it the --torch cpu way, and says so on its line."""
    folder = read_model(CORPUS / "mlflow3.17.2-py3.11-pytorch")
    target, _ = target_for(folder)
    reqs = folder.env.spec.requirements
    assert "torch==2.13.0+cpu" in _raws(reqs)
    local = torch_plan("default", reqs, [CPU_WHEELS], target)
    assert [c.raw for c in local.constraints] == ["torch==2.13.0+cpu"] and local.backend is None
    first = local.findings[0]
    assert (first.code, str(first.location)) == ("EB319", "requirements.txt:5")
    assert "resolved as --torch cpu does" in first.message
    remote = torch_plan("default", reqs, [], target)
    assert remote.backend == "cpu" and not remote.constraints
    # an unpinned torch stays PyPI's (CUDA) build unless --torch cpu is given
    unpinned = read_model(TORCH).env.spec.requirements
    assert torch_plan("default", unpinned, [CPU_WHEELS], target) == torch_plan(
        "default", unpinned, [], target
    )
    assert torch_plan("default", unpinned, [], target).backend is None


def _pin(name: str, version: str, *via: str) -> Pin:
    return Pin(name=name, version=Version(version), hashes=(), requested_by=via)


def test_cuda_torch_on_a_cpu_model_suggests_torch_cpu(tmp_path: Path) -> None:
    folder = read_model(TORCH)
    assert gpu_evidence(folder) is None  # trained with torch 2.13.0+cpu, device null
    cuda_lock = [
        _pin("torch", "2.15.0", "requirements.txt:5"),
        _pin("nvidia-nccl-cu13", "2.28", "torch"),
    ]
    finding = cuda_torch_finding(folder, cuda_lock)
    assert finding is not None and finding.code == "EB318"
    assert "2.13.0+cpu" in finding.message and "--torch cpu" in (finding.hint or "")
    assert cuda_torch_finding(folder, [_pin("torch", "2.13.0+cpu")]) is None
    # a model whose code moves tensors to a GPU gets no suggestion
    model = tmp_path / TORCH.name
    shutil.copytree(TORCH, model)
    (model / "code").mkdir()
    (model / "code" / "net.py").write_text("import torch\nDEVICE = torch.device('cuda:0')\n")
    assert gpu_evidence(read_model(model)) == "code/net.py"
    assert cuda_torch_finding(read_model(model), cuda_lock) is None


def test_cpu_index_links_for_pins_the_index_gave() -> None:
    pins = [_pin("torch", "2.15.0+cpu"), _pin("torchvision", "0.30.0+cpu"), _pin("numpy", "2.0")]
    assert cpu_index_links(pins, ["torch"]) == (
        "https://download.pytorch.org/whl/cpu/torchvision/",
    )


def test_settings_carry_mlflow_and_torch(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.envbuild]\nmlflow = "full"\ntorch = "cpu"\n')
    settings, _ = load_settings(tmp_path)
    options = options_from(settings)
    assert (options.mlflow, options.torch) == ("full", "cpu")
    assert options_from(settings, torch="default").torch == "default"  # the command line wins
    (tmp_path / "pyproject.toml").write_text('[tool.envbuild]\ntorch = "cuda"\n')
    with pytest.raises(InputError, match="one of default, cpu"):
        load_settings(tmp_path)


def test_readme_names_every_system_cuda_package_with_its_reason() -> None:
    from envbuild.render import SYSTEM_CUDA

    readme = (ROOT / "README.md").read_text()
    for name, reason in SYSTEM_CUDA.items():
        assert f"`{name}`" in readme and reason in readme, name


def test_no_torch_cpu_suggestion_for_a_torch_nothing_needs() -> None:
    """examples/sklearn-credit declares torch (MLflow wrote it for a skops model) that no
    file needs: EB231 says remove it, so EB318 stays quiet."""
    from envbuild.infer.static import needed_distributions
    from tests.helpers import EXAMPLES

    folder = read_model(EXAMPLES / "sklearn-credit")
    reqs = folder.env.spec.requirements
    cuda_lock = [
        _pin("torch", "2.13.0", "requirements.txt:7"),
        _pin("nvidia-nccl-cu13", "2.28", "torch"),
    ]
    assert cuda_torch_finding(folder, cuda_lock) is not None  # without the scan
    quiet = cuda_torch_finding(
        folder, cuda_lock, declared=reqs, needed=lambda: needed_distributions(folder)
    )
    assert quiet is None


@pytest.mark.parametrize(
    ("declared", "swapped"),
    [
        ("mlflow==1.30.1", True),
        ("mlflow<1.15", True),
        ("mlflow==1.13.1", False),
        ("mlflow<1.14", False),
    ],
)
def test_mlflow_before_skinny_existed_stays_full(
    tmp_path: Path, declared: str, swapped: bool
) -> None:
    """mlflow-skinny exists from 1.14.0: a declaration allowing only older MLflow keeps mlflow."""
    model = tmp_path / BARE.name
    shutil.copytree(BARE, model)
    req = model / "requirements.txt"
    req.write_text(req.read_text().replace("mlflow\n", f"{declared}\n", 1))
    reqs = list(read_model(model).env.spec.requirements)
    assert bool(serving_stack("1.13.1", reqs).swapped) is swapped

"""What goes into the serving environment, against the real index (issue #14 causes 1, 2
and 10): the slim base for PyPI's CUDA wheels (--gpu for NVIDIA's), one MLflow per lock
whatever the requirements say, mlflow served as mlflow-skinny unless the model needs full
MLflow's dependencies (or --mlflow full), and --torch cpu with the check's suggestion.
Real corpus folders written by MLflow; the PyTorch CPU index is not reachable from our
machines, so the CPU build of torch comes from the machine's --find-links folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from envbuild import api
from envbuild.cli import main
from envbuild.resolve import Lock
from tests.helpers import ROOT

pytestmark = pytest.mark.network

CORPUS = ROOT / "tests" / "corpus" / "models"
BARE = CORPUS / "mlflow2.9.2-py3.9-sklearn-pickle-bare-mlflow"
XGB = CORPUS / "mlflow2.9.2-py3.9-xgboost-sklearn"
TORCH = CORPUS / "mlflow3.17.2-py3.11-pytorch-torch-unpinned"
CPU_WHEELS = Path("/opt/wheels")


def _mlflows(lock: Lock | None) -> dict[str, str]:
    assert lock is not None
    return {p.name: str(p.version) for p in lock.pins if p.name in ("mlflow", "mlflow-skinny")}


def _copy(src: Path, tmp_path: Path, old: str, new: str) -> Path:
    model = tmp_path / src.name
    shutil.copytree(src, model)
    # both environment files, so they still agree (one edited alone is a disagreement,
    # EB113, and --env-from auto may follow the other file)
    for name in ("requirements.txt", "conda.yaml"):
        path = model / name
        text = path.read_text()
        assert old in text, name
        if name == "conda.yaml" and not new:  # a removed line: its "  - " item too
            old = f"  - {old}"
        path.write_text(text.replace(old, new, 1))
    return model


def test_xgboost_pulling_nccl_gets_the_slim_base(tmp_path: Path) -> None:
    """xgboost 2.1's Linux wheel requires nvidia-nccl-cu12 (the corpus model's 2.0.3 does
    not): that used to switch the base to nvidia/cuda for a CPU model."""
    model = _copy(XGB, tmp_path, "xgboost==2.0.3", "xgboost==2.1.4")
    result = api.image(model, build=False)
    assert result.lock is not None and result.lock.pin("nvidia-nccl-cu12") is not None
    assert result.plan is not None and result.plan.base_image == "python:3.9-slim"
    assert result.plan.buildable
    assert [f.code for f in result.findings if f.code in ("EB405", "EB412")] == ["EB412"]
    gpu = api.image(model, build=False, gpu=True)
    assert gpu.plan is not None and gpu.plan.base_image.startswith("nvidia/cuda:12.")
    # the same through the command line: --gpu renders the CUDA template, named in the header
    run = CliRunner().invoke(main, ["image", str(model), "--no-build", "--gpu"])
    assert run.exit_code == 0, run.output
    assert "FROM nvidia/cuda:12." in run.stdout and " --gpu\n" in run.stdout.splitlines(True)[0]


def test_bare_mlflow_locks_one_mlflow_skinny_unless_full() -> None:
    result = api.lock(BARE, dry_run=True)
    assert _mlflows(result.lock) == {"mlflow-skinny": "2.9.2"}
    assert result.lock is not None and result.lock.pin("flask") is None
    assert "EB316" in {f.code for f in result.findings}
    full = api.lock(BARE, dry_run=True, mlflow="full")
    assert _mlflows(full.lock) == {"mlflow": "2.9.2"}  # MLflow 2's mlflow does not need skinny
    assert full.lock is not None and full.lock.pin("flask") is not None
    assert "--mlflow full" in full.lock.text.splitlines()[0]


def test_a_pin_other_than_mlflow_version_gives_one_mlflow(tmp_path: Path) -> None:
    """requirements pin mlflow==2.14.3, MLmodel says 2.9.2: the lock used to hold mlflow
    2.14.3 and mlflow-skinny 2.9.2, two distributions writing the same package."""
    model = _copy(BARE, tmp_path, "mlflow\n", "mlflow==2.14.3\n")
    assert _mlflows(api.lock(model, dry_run=True).lock) == {"mlflow-skinny": "2.14.3"}
    full = api.lock(model, dry_run=True, mlflow="full")
    assert _mlflows(full.lock) == {"mlflow": "2.14.3"}
    # drift from the saving version is a warning, not a second MLflow
    assert "EB320" in {f.code for f in full.findings}


def test_mlflow_version_is_a_preference_not_a_conflict(tmp_path: Path) -> None:
    """The model's own lines resolve (packaging==24.1 with a bare mlflow); the model's
    mlflow_version 2.9.2 would need packaging<24, so it is dropped and said so (EB317)."""
    model = _copy(BARE, tmp_path, "packaging==23.2", "packaging==24.1")
    result = api.lock(model, dry_run=True)
    assert result.lock is not None, [f.one_line() for f in result.findings]
    versions = _mlflows(result.lock)
    assert list(versions) == ["mlflow-skinny"] and versions["mlflow-skinny"] != "2.9.2"
    (dropped,) = [f for f in result.findings if f.code == "EB317"]
    assert "mlflow-skinny==2.9.2" in dropped.message and "packaging" in dropped.message


def test_a_model_needing_full_mlflow_dependencies_keeps_mlflow(tmp_path: Path) -> None:
    """Bare mlflow without scikit-learn, as Azure writes it: full mlflow brings
    scikit-learn, which the model's pickle needs, so mlflow stays (and the report says why)."""
    model = _copy(BARE, tmp_path, "scikit-learn==1.3.2\n", "")
    result = api.lock(model, dry_run=True)
    assert _mlflows(result.lock) == {"mlflow": "2.9.2"}
    (kept,) = [f for f in result.findings if f.code == "EB316"]
    assert "stays full mlflow" in kept.message and "scikit-learn" in kept.message


def test_check_suggests_torch_cpu_and_torch_cpu_locks_the_cpu_build(tmp_path: Path) -> None:
    report = api.check([TORCH])
    codes = {f.code for f in report.findings()}
    assert "EB318" in codes
    cpu = api.check([TORCH], torch="cpu", find_links=[CPU_WHEELS])
    assert "EB318" not in {f.code for f in cpu.findings()}
    out = tmp_path / "requirements.lock"
    run = CliRunner().invoke(
        main,
        [
            "lock",
            str(TORCH),
            "--torch",
            "cpu",
            "--find-links",
            str(CPU_WHEELS),
            "--output",
            str(out),
        ],
    )
    assert run.exit_code == 0, run.output
    text = out.read_text()
    assert "\ntorch==2.13.0+cpu \\" in text and "\nnvidia-" not in text
    assert f"--find-links {CPU_WHEELS}" in text and "--torch cpu" in text.splitlines()[0]
    # and the image of the CUDA-torch lock is on the slim base now
    image = api.image(TORCH, build=False)
    assert image.plan is not None and image.plan.base_image == "python:3.11-slim"

"""The safety gate: a model the static scan calls unsafe is refused by every command
that would load it, before anything runs; --trust-model is the only way past."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from envbuild.check import CheckOptions, check_model
from envbuild.check.stages import STAGES
from envbuild.findings import Finding, Location, Severity
from envbuild.read import read_model
from envbuild.safety import LOADING_COMMANDS, UnsafeModelError, grade, require_safe, verdict
from tests.helpers import EXAMPLES, run_envbuild

EB502 = Finding(
    code="EB502",
    severity=Severity.WARNING,
    message="pickle carries Python code by value",
    location=Location(file="python_model.pkl"),
)


def test_code_by_value_is_unsafe_only_across_python_minors() -> None:
    same = grade([EB502], saved_python="3.11.7", target_python="3.11")
    assert same[0].severity is Severity.WARNING
    other = grade([EB502], saved_python="3.11.7", target_python="3.12")
    assert other[0].severity is Severity.UNSAFE
    assert "saved by Python 3.11 and would be loaded by Python 3.12" in other[0].message
    unknown = grade([EB502], saved_python=None, target_python="3.12")
    assert unknown[0].severity is Severity.WARNING


def test_code_by_value_is_refused_on_another_minor_only(
    copy_model: Callable[[str], Path],
) -> None:
    import cloudpickle  # MLflow's dependency: written here, never loaded

    model = copy_model("pyfunc-custom")
    scale = 3
    (model / "artifacts" / "scale.pkl").write_bytes(cloudpickle.dumps(lambda x: x * scale))
    folder = read_model(model)
    assert not verdict(folder, target_python="3.11", trusted=False).refuses
    judged = verdict(folder, target_python="3.12", trusted=False)
    assert judged.refuses and {f.code for f in judged.unsafe} == {"EB502"}


def test_hostile_model_is_refused_naming_file_and_offset(hostile: tuple[Path, Path]) -> None:
    model, marker = hostile
    folder = read_model(model)
    with pytest.raises(UnsafeModelError) as info:
        require_safe(folder, command="envbuild venv", target_python="3.11", trusted=False)
    err = info.value
    assert err.code == "EB510" and int(err.exit_code) == 1
    assert err.location.file == "artifacts/classifier.joblib"
    assert "posix.system at byte 0" in err.message
    trusted = require_safe(folder, command="envbuild venv", target_python="3.11", trusted=True)
    assert not trusted.refuses and trusted.unsafe
    finding = trusted.trusted_finding()
    assert finding is not None and finding.severity is Severity.WARNING
    assert not marker.exists()


def test_check_json_says_which_commands_refuse_even_when_ignored(
    hostile: tuple[Path, Path],
) -> None:
    model, _ = hostile
    report = check_model(
        str(model), CheckOptions(offline=True, ignore=frozenset({"EB5xx"})), STAGES
    )
    assert report.refuses == LOADING_COMMANDS
    assert report.to_json(strict=False)["refuses"] == ["image", "venv", "infer --trace"]
    benign = check_model(
        str(EXAMPLES / "sklearn-credit"),
        CheckOptions(offline=True),
        STAGES,
    )
    assert benign.refuses == ()


@pytest.mark.parametrize(
    "args",
    [
        ("image", "--no-build"),
        ("image", "--output", "{out}"),
        ("infer", "--trace", "--dry-run"),
    ],
    ids=["image-no-build", "image-output", "infer-trace"],
)
def test_commands_refuse_before_any_work(
    hostile: tuple[Path, Path], tmp_path: Path, args: tuple[str, ...]
) -> None:
    model, marker = hostile
    out = tmp_path / "context"
    argv = [a.replace("{out}", str(out)) for a in args]
    done = run_envbuild(argv[0], str(model), *argv[1:], "--format", "json")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["exit_code"] == 1 and not doc["ok"]
    (error,) = doc["findings"]
    assert error["code"] == "EB510" and error["file"] == "artifacts/classifier.joblib"
    assert "posix.system at byte 0" in error["message"]
    assert not out.exists() and not marker.exists()
    text = run_envbuild(argv[0], str(model), *argv[1:])
    assert text.returncode == 1
    assert "Traceback" not in text.stderr
    lines = [ln for ln in text.stderr.splitlines() if "EB510" in ln]
    assert len(lines) == 1 and "artifacts/classifier.joblib" in lines[0], text.stderr


def test_trust_model_renders_and_labels_the_image(hostile: tuple[Path, Path]) -> None:
    model, marker = hostile
    done = run_envbuild("image", str(model), "--no-build", "--trust-model", "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["result"]["plan"]["labels"]["io.envbuild.trust-model"] == "true"
    assert doc["result"]["safety"]["trust_model"] is True
    assert doc["result"]["safety"]["unsafe"][0]["code"] == "EB501"
    assert [f["code"] for f in doc["findings"] if f["code"] == "EB510"] == ["EB510"]
    assert 'io.envbuild.trust-model="true"' in doc["result"]["dockerfile"]
    assert not marker.exists()


def test_a_pickle_that_cannot_be_opened_is_refused(copy_model: Callable[[str], Path]) -> None:
    model = copy_model("sklearn-credit")
    (model / "extra.pkl").write_bytes(b"\x1f\x8b\x08\x00" + b"not gzip data" * 4)
    judged = verdict(read_model(model), target_python="3.11", trusted=False)
    assert judged.refuses
    (finding,) = judged.unsafe
    assert finding.code == "EB211" and finding.severity is Severity.UNSAFE
    assert finding.location.file == "extra.pkl"
    report = check_model(str(model), CheckOptions(offline=True), STAGES)
    assert report.refuses == LOADING_COMMANDS
    assert any(f.code == "EB211" for f in report.failing(strict=False))

"""The ways a pipeline calls envbuild check, exercised for real: the pre-commit hook
through `pre-commit try-repo` in a temporary repository, and the composite GitHub
Action's steps run by bash with the inputs GitHub would pass."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from tests.helpers import DATA, EXAMPLES, ROOT

BROKEN = DATA / "broken"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.mark.network
@pytest.mark.slow
def test_precommit_hook(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    repo.mkdir()
    _git(repo, "init", "-q")
    shutil.copytree(EXAMPLES / "sklearn-credit", repo / "credit")
    shutil.copytree(BROKEN / "bad-requirement", repo / "broken")
    (repo / "notes.txt").write_text("not a model\n")
    _git(repo, "add", ".")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    cmd = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "envbuild-check", "--verbose"]
    clean = subprocess.run(
        [*cmd, "--files", "credit/MLmodel", "credit/requirements.txt", "notes.txt"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "credit: ok" in clean.stdout
    broken = subprocess.run(
        [*cmd, "--files", "broken/requirements.txt"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "EB110 requirements.txt:4" in broken.stdout


def _action_steps() -> list[dict]:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    return action["runs"]["steps"]


def _expand(value: str, inputs: dict[str, str]) -> str:
    for key, val in inputs.items():
        value = value.replace("${{ inputs." + key + " }}", val)
    return value.replace("${{ github.action_path }}", str(ROOT))


@pytest.mark.network
@pytest.mark.slow
def test_composite_action(tmp_path: Path) -> None:
    """Run each `run:` step of action.yml with bash, as the runner would (the setup-python
    step is GitHub's own action: a fresh virtualenv stands in for it)."""
    env_dir = tmp_path / "runner-python"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    base_env = {**os.environ, "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    base_env.pop("PYTHONPATH", None)

    def run(models: str, args: str) -> subprocess.CompletedProcess[str]:
        inputs = {"models": models, "args": args, "python-version": "3.11", "setup-python": "false"}
        out = None
        for step in _action_steps():
            if "uses" in step:
                assert step["uses"].startswith("actions/setup-python@")
                continue
            env = {
                **base_env,
                **{k: _expand(str(v), inputs) for k, v in step.get("env", {}).items()},
            }
            out = subprocess.run(
                ["bash", "-e", "-c", step["run"]],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                return out
        assert out is not None
        return out

    ok = run(f"{EXAMPLES / 'sklearn-credit'} {EXAMPLES / 'pyfunc-custom'}", "--offline")
    assert ok.returncode == 0, ok.stderr
    assert "::error" not in ok.stdout
    bad = run(str(BROKEN / "example-mismatch"), "--offline --strict")
    assert bad.returncode == 1
    lines = [line for line in bad.stdout.splitlines() if line.startswith("::error ")]
    assert len(lines) == 2
    assert lines[0].startswith(
        f"::error file={BROKEN / 'example-mismatch'}/input_example.json,title=EB120::"
    )

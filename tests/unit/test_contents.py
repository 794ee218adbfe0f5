"""Which model files an image carries: real example folders dressed up as a repository
root (a credentials file, a notebook, a large binary, .github/, Git LFS pointers), the
secret and LFS detectors on true and false positives, and the rules (.envbuildignore,
--exclude, --allow-file, [tool.envbuild]) through render, check and show."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from envbuild.build import write_context
from envbuild.cli import main
from envbuild.contents import (
    RefusedFiles,
    human_size,
    parse_lfs_pointer,
    secret_in,
    select,
)
from envbuild.errors import InputError
from envbuild.findings import Severity
from envbuild.read import read_model
from envbuild.render import render
from envbuild.resolve.lock import Lock, read_lock
from tests.helpers import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden"
UV_REQ = "uv==0.13.9 --hash=sha256:" + "0" * 64

FAKE_AWS_ID = "AKIAIOSFODNN7EXAMPLE"
FAKE_PASSWORD = "hunter2-not-real"
CREDENTIALS = f"DB_HOST=db.internal\nAWS_ACCESS_KEY_ID={FAKE_AWS_ID}\nDB_PASSWORD={FAKE_PASSWORD}\n"
BIG = 6 * 1024 * 1024


def pointer(size: int, seed: bytes = b"x") -> bytes:
    oid = hashlib.sha256(seed).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


def dress_up(model: Path, *, referenced_pointer: bool) -> Path:
    """A repository-root model folder, as found on GitHub."""
    (model / "codes").mkdir()
    (model / "codes" / "credentials.env").write_text(CREDENTIALS)
    (model / "analysis.ipynb").write_text('{"cells": [], "nbformat": 4}\n')
    (model / "report.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(BIG))
    (model / ".github" / "workflows").mkdir(parents=True)
    (model / ".github" / "workflows" / "x.yml").write_text("on: push\n")
    (model / "old").mkdir()
    (model / "old" / "weights.bin").write_bytes(pointer(50_000_000, b"old"))
    (model / "__pycache__").mkdir()
    (model / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\x00\x01")
    if referenced_pointer:
        # an artifact the MLmodel names, checked out without `git lfs pull`
        (model / "artifacts" / "weights.bin").write_bytes(pointer(123_456_789))
        mlmodel = model / "MLmodel"
        text = mlmodel.read_text()
        anchor = "    artifacts:\n"
        assert anchor in text
        mlmodel.write_text(
            text.replace(anchor, anchor + "      weights:\n        path: artifacts/weights.bin\n")
        )
    return model


@pytest.fixture
def repo_model(copy_model) -> Path:
    return dress_up(copy_model("pyfunc-custom"), referenced_pointer=False)


@pytest.fixture
def repo_model_lfs(copy_model) -> Path:
    return dress_up(copy_model("pyfunc-custom"), referenced_pointer=True)


def lock_view(name: str) -> Lock:
    text = (GOLDEN / "locks" / f"{name}.lock").read_text()
    return read_lock(text)


def render_model(model: Path, **kwargs):
    return render(
        read_model(model),
        lock_view("pyfunc-custom"),
        command="envbuild image pyfunc-custom",
        uv_requirement=UV_REQ,
        **kwargs,
    )


def model_paths(plan) -> set[str]:
    return {f.path.removeprefix("model/") for f in plan.files if f.path.startswith("model/")}


def invoke(*args: str, cwd: Path | None = None):
    old = Path.cwd()
    if cwd:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(main, list(args))
    finally:
        os.chdir(old)


# --------------------------------------------------------------------------------------
# detectors


def test_lfs_pointer_is_recognized() -> None:
    p = parse_lfs_pointer(pointer(134_217_728))
    assert p is not None and p.size == 134_217_728 and len(p.oid) == 64


@pytest.mark.parametrize(
    "data",
    [
        b"version https://git-lfs.github.com/spec/v1\nsize 12\n",  # no oid
        b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n",  # short oid
        pointer(10) + b"#" * 1024,  # a real file that merely starts like one
        b"not a pointer\n",
        (EXAMPLES / "sklearn-credit" / "MLmodel").read_bytes(),
    ],
)
def test_not_an_lfs_pointer(data: bytes) -> None:
    assert parse_lfs_pointer(data) is None


@pytest.mark.parametrize(
    "name",
    [
        "credentials.env",
        ".env",
        "sub/.env.production",
        "credentials.json",
        "deploy/id_rsa",
        "id_ed25519",
        "server.pem",
        "tls.key",
        ".netrc",
        ".pypirc",
        ".git-credentials",
        ".aws/credentials",
        "home/.kube/config",
        ".docker/config.json",
    ],
)
def test_secret_by_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / "f"
    path.write_text("nothing here\n")
    found = secret_in(name, path)
    assert found is not None and found.line is None


@pytest.mark.parametrize("name", ["id_rsa.pub", ".env.example", "credit_scorer.py", "keys.txt"])
def test_not_secret_by_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / "f"
    path.write_text("nothing here\n")
    assert secret_in(name, path) is None


TOKENS = {
    "aws": f"aws_id = {FAKE_AWS_ID}",
    "github": "token: ghp_" + "a1B2" * 9,
    "github_pat": "github_pat_" + "A1b2C3d4E5" * 3,
    "slack": "hook xoxb-123456789012-abcdefABCDEF",
    "pem": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
    "openai": "OPENAI = 'sk-proj-" + "Ab1_" * 10 + "'",
    "google": "key AIza" + "Sy" * 17 + "A",
    "assignment": "[db]\nhost = x\npassword = " + FAKE_PASSWORD + "\n",
    "json_assignment": '{"api_key": "' + FAKE_PASSWORD + '"}',
}


@pytest.mark.parametrize("kind", sorted(TOKENS))
def test_secret_by_content(tmp_path: Path, kind: str) -> None:
    suffix = ".json" if kind == "json_assignment" else ".cfg"
    path = tmp_path / f"settings{suffix}"
    path.write_text("# settings\n" + TOKENS[kind] + "\n")
    found = secret_in(path.name, path)
    assert found is not None, kind
    assert found.line is not None and found.line >= 2
    assert FAKE_PASSWORD not in found.why and FAKE_AWS_ID not in found.why


@pytest.mark.parametrize(
    "text",
    [
        "password = ${DB_PASSWORD}\n",
        "password: <set me>\n",
        "api_key = null\n",
        "AKIA_LIKE_BUT_SHORT = AKIA1234\n",
        "scikit-learn==1.9.1\nsk-learn-compat==1.0\n",
    ],
)
def test_placeholders_are_not_secrets(tmp_path: Path, text: str) -> None:
    path = tmp_path / "settings.ini"
    path.write_text(text)
    assert secret_in(path.name, path) is None


def test_assignments_count_only_in_configuration_files(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    path.write_text(f"password = '{FAKE_PASSWORD}'\n")
    assert secret_in("train.py", path) is None
    path.write_text(f"KEY = '{FAKE_AWS_ID}'\n")  # a token format counts everywhere
    assert secret_in("train.py", path) is not None


def test_binary_and_large_files_are_not_scanned(tmp_path: Path) -> None:
    binary = tmp_path / "weights.bin"
    binary.write_bytes(b"\x00\x01" + FAKE_AWS_ID.encode())
    assert secret_in("weights.bin", binary) is None
    large = tmp_path / "big.txt"
    large.write_bytes(b"a" * (2 * 1024 * 1024) + FAKE_AWS_ID.encode())
    assert secret_in("big.txt", large) is None


@pytest.mark.parametrize(
    "name", ["sklearn-credit", "pyfunc-custom", "pytorch-tensor", "fastai-legacy"]
)
def test_the_examples_have_no_secrets_and_nothing_unused(name: str) -> None:
    """requirements.txt, conda.yaml, pickles, joblib, skops and torch files are not secrets."""
    contents = select(read_model(EXAMPLES / name))
    assert contents.secrets == () and contents.lfs == () and contents.unreferenced == ()
    assert contents.findings() == []
    assert {f.path for f in contents.included} == {
        p.relative_to(EXAMPLES / name).as_posix()
        for p in (EXAMPLES / name).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


# --------------------------------------------------------------------------------------
# the selection through render (what `image` copies) and check


def test_render_refuses_a_secret_and_names_it(repo_model: Path) -> None:
    with pytest.raises(RefusedFiles) as err:
        render_model(repo_model)
    assert err.value.exit_code == 1
    [problem] = err.value.problems
    assert problem.code == "EB504" and problem.location.file == "codes/credentials.env"
    assert (
        "--allow-file codes/credentials.env" in problem.hint and ".envbuildignore" in problem.hint
    )
    assert FAKE_AWS_ID not in str(err.value) and FAKE_PASSWORD not in str(err.value)


def test_envbuildignore_leaves_it_out(repo_model: Path, tmp_path: Path) -> None:
    (repo_model / ".envbuildignore").write_text("# repository files\ncodes/\n*.pdf\n!keep.pdf\n")
    (repo_model / "keep.pdf").write_bytes(b"%PDF small\n")
    plan = render_model(repo_model)
    copied = model_paths(plan)
    out = tmp_path / "ctx"
    write_context(plan, out)
    on_disk = {
        p.relative_to(out / "model").as_posix() for p in (out / "model").rglob("*") if p.is_file()
    }
    assert on_disk == copied
    assert "MLmodel" in copied and "artifacts/classifier.joblib" in copied and "keep.pdf" in copied
    for left_out in (
        "codes/credentials.env",
        "analysis.ipynb",
        ".github/workflows/x.yml",
        "old/weights.bin",
        "report.pdf",
        ".envbuildignore",
        "__pycache__/x.cpython-311.pyc",
    ):
        assert left_out not in copied, left_out
    rules = {e.path: e.rule for e in select(read_model(repo_model)).excluded}
    assert rules["codes/credentials.env"] == ".envbuildignore:2: codes/"
    assert rules["report.pdf"] == ".envbuildignore:3: *.pdf"
    assert rules["__pycache__/"] == "default: __pycache__/"
    assert rules["old/weights.bin"] == "Git LFS pointer"
    codes = {(f.code, f.severity) for f in plan.findings}
    assert ("EB107", Severity.WARNING) in codes  # the unused pointer: not copied
    assert ("EB410", Severity.INFO) in codes  # the notebook and .github/: left out
    assert ("EB410", Severity.WARNING) not in codes  # the PDF is excluded now


def test_exclude_option_leaves_it_out(repo_model: Path) -> None:
    plan = render_model(repo_model, exclude=("codes/credentials.env",))
    copied = model_paths(plan)
    assert "codes/credentials.env" not in copied and "report.pdf" in copied
    warning = next(f for f in plan.findings if f.code == "EB410" and f.severity is Severity.WARNING)
    size = human_size(BIG + len(b"%PDF-1.7\n"))
    assert f"report.pdf ({size})" in warning.message and f"{size} to the image" in warning.message


def test_allow_file_copies_it(repo_model: Path) -> None:
    plan = render_model(repo_model, allow_files=("codes/credentials.env", "analysis.ipynb"))
    copied = model_paths(plan)
    assert {"codes/credentials.env", "analysis.ipynb"} <= copied
    assert ".github/workflows/x.yml" not in copied and "old/weights.bin" not in copied
    info = [f for f in plan.findings if f.code == "EB504"]
    assert [f.severity for f in info] == [Severity.INFO]


def test_a_pointer_the_model_needs_refuses_the_render(repo_model_lfs: Path) -> None:
    with pytest.raises(RefusedFiles) as err:
        render_model(repo_model_lfs, exclude=("codes/",))
    [problem] = err.value.problems
    assert problem.code == "EB107" and problem.location.file == "artifacts/weights.bin"
    assert "123.5 MB" in problem.message and "git lfs pull" in problem.hint


def test_check_json_gives_the_three_findings(repo_model_lfs: Path) -> None:
    result = invoke("check", "--offline", "--format", "json", str(repo_model_lfs))
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    found = {(f["code"], f["severity"], f["file"]) for f in doc["findings"]}
    assert ("EB504", "error", "codes/credentials.env") in found
    assert ("EB107", "error", "artifacts/weights.bin") in found
    assert ("EB107", "warning", "old/weights.bin") in found
    assert ("EB410", "warning", "report.pdf") in found
    notebooks = next(f for f in doc["findings"] if f["code"] == "EB410" and f["severity"] == "info")
    assert (
        "analysis.ipynb" in notebooks["message"]
        and ".github/workflows/x.yml" in notebooks["message"]
    )
    assert FAKE_AWS_ID not in result.stdout and FAKE_PASSWORD not in result.stdout


def test_check_honours_exclude_allow_and_settings(repo_model: Path, tmp_path: Path) -> None:
    result = invoke(
        "check", "--offline", "--format", "json", "--exclude", "codes/", str(repo_model)
    )
    codes = {f["code"] for f in json.loads(result.stdout)["findings"] if f["severity"] == "error"}
    assert "EB504" not in codes
    result = invoke(
        "check", "--offline", "--format", "json", "--allow-file", "codes/credentials.env",
        str(repo_model),
    )  # fmt: skip
    eb504 = [f for f in json.loads(result.stdout)["findings"] if f["code"] == "EB504"]
    assert [f["severity"] for f in eb504] == ["info"]
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[tool.envbuild]\nexclude = ["codes/", "*.pdf"]\nallow-file = []\n'
    )
    result = invoke("check", "--offline", "--format", "json", str(repo_model), cwd=project)
    found = {(f["code"], f["severity"]) for f in json.loads(result.stdout)["findings"]}
    assert ("EB504", "error") not in found and ("EB410", "warning") not in found


def test_mlmodel_that_is_an_lfs_pointer(copy_model) -> None:
    model = copy_model("sklearn-credit")
    (model / "MLmodel").write_bytes(pointer(4096))
    with pytest.raises(InputError) as err:
        read_model(model)
    assert err.value.code == "EB107" and "git lfs pull" in err.value.hint
    assert "re-save" not in str(err.value) + err.value.hint
    result = invoke("check", "--offline", "--format", "json", str(model))
    assert result.exit_code == 2
    [finding] = json.loads(result.stdout)["findings"]
    assert finding["code"] == "EB107" and finding["file"] == "MLmodel"
    assert "4 kB" in finding["message"] and "git lfs pull" in finding["hint"]


def test_env_file_that_is_an_lfs_pointer(copy_model) -> None:
    model = copy_model("sklearn-credit")
    (model / "conda.yaml").write_bytes(pointer(900))
    with pytest.raises(InputError) as err:
        read_model(model)
    assert [p.code for p in err.value.problems if p.location.file == "conda.yaml"] == ["EB107"]


def test_show_lists_unused_and_left_out_files(repo_model: Path) -> None:
    result = invoke("show", "--format", "json", str(repo_model))
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["result"]["files"]
    assert [f["path"] for f in files["unreferenced"]] == ["report.pdf"]
    assert files["unreferenced"][0]["size"] > BIG
    excluded = {e["path"]: e["rule"] for e in files["excluded"]}
    assert excluded["analysis.ipynb"] == "not used by the MLmodel: *.ipynb"
    assert excluded[".github/workflows/x.yml"] == "not used by the MLmodel: /.github/"
    assert excluded["codes/credentials.env"] == "secret-looking"
    assert [s["path"] for s in files["secrets"]] == ["codes/credentials.env"]
    assert [p["path"] for p in files["lfs_pointers"]] == ["old/weights.bin"]
    text = invoke("show", str(repo_model)).stdout
    assert "files nothing in the MLmodel uses (copied)" in text and "report.pdf" in text
    assert "analysis.ipynb" in text and "secret-looking" in text
    assert FAKE_AWS_ID not in text and FAKE_PASSWORD not in text


def test_a_referenced_notebook_is_kept(copy_model) -> None:
    model = copy_model("pyfunc-custom")
    shutil.copy(model / "artifacts" / "config.json", model / "artifacts" / "explain.ipynb")
    (model / "docs.ipynb").write_text("{}\n")
    contents = select(read_model(model))
    kept = {f.path for f in contents.included}
    assert "artifacts/explain.ipynb" in kept and "docs.ipynb" not in kept


@pytest.mark.parametrize("n", [0, 999, 1000, 4096, 6_291_465, 123_456_789, 10**10])
def test_sizes_read_as_the_image_size_does(n: int) -> None:
    from envbuild.build import human_size as image_size

    assert human_size(n) == image_size(n)


def test_excluding_a_file_the_model_uses_is_a_warning(copy_model) -> None:
    model = copy_model("pyfunc-custom")
    plan = render_model(model, exclude=("artifacts/*.json",))
    assert "artifacts/config.json" not in model_paths(plan)
    [warning] = [f for f in plan.findings if f.code == "EB410"]
    assert warning.severity is Severity.WARNING
    assert warning.location.file == "artifacts/config.json"
    assert "--exclude artifacts/*.json" in warning.message

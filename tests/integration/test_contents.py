"""`envbuild image --output` on a repository-root model folder, as a user runs it: refused
while a credentials file is in it, then the written context carries none of the secret,
notebook, .github or LFS-pointer files (no Docker needed)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.helpers import run_envbuild

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent.sock"}
FAKE_AWS_ID = "AKIAIOSFODNN7EXAMPLE"
FAKE_PASSWORD = "hunter2-not-real"


def dress_up(model: Path) -> Path:
    """What a repository root around a model folder carries (tests/unit/test_contents.py
    has the full set)."""
    (model / "codes").mkdir()
    (model / "codes" / "credentials.env").write_text(
        f"AWS_ACCESS_KEY_ID={FAKE_AWS_ID}\nDB_PASSWORD={FAKE_PASSWORD}\n"
    )
    (model / "analysis.ipynb").write_text('{"cells": []}\n')
    (model / "report.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(1024))
    (model / ".github" / "workflows").mkdir(parents=True)
    (model / ".github" / "workflows" / "x.yml").write_text("on: push\n")
    (model / "old").mkdir()
    oid = hashlib.sha256(b"old").hexdigest()
    (model / "old" / "weights.bin").write_text(
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize 50000000\n"
    )
    return model


@pytest.mark.network
def test_image_output_copies_none_of_them(copy_model, tmp_path: Path) -> None:
    model = dress_up(copy_model("pyfunc-custom"))
    out = tmp_path / "ctx"
    refused = run_envbuild(
        "image", str(model), "--output", str(out), env={**os.environ, **NO_DOCKER}
    )
    assert refused.returncode == 1, refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "EB504 codes/credentials.env" in errors[0]
    assert "--allow-file codes/credentials.env" in refused.stderr
    assert FAKE_AWS_ID not in refused.stderr + refused.stdout
    assert FAKE_PASSWORD not in refused.stderr + refused.stdout
    assert not out.exists()

    (model / ".envbuildignore").write_text("codes/\n")
    done = run_envbuild(
        "image",
        str(model),
        "--output",
        str(out),
        "--exclude",
        "*.pdf",
        env={**os.environ, **NO_DOCKER},
    )
    assert done.returncode == 0, done.stderr
    copied = {p.relative_to(out / "model").as_posix() for p in (out / "model").rglob("*")}
    assert {"MLmodel", "python_model.pkl", "artifacts/classifier.joblib"} <= copied
    for name in ("codes", "analysis.ipynb", ".github", "old", "report.pdf", ".envbuildignore"):
        assert not any(c == name or c.startswith(name + "/") for c in copied), name
    assert "EB107" in done.stderr and "old/weights.bin" in done.stderr

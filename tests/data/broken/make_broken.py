"""Regenerate the broken copies of examples/sklearn-credit used by the reader tests.

    python tests/data/broken/make_broken.py

Each case is a real model folder written by MLflow with one thing (or several) broken.
CASES (in tests/unit/test_broken.py) says which error each must give.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[2] / "examples" / "sklearn-credit"


def _copy(name: str) -> Path:
    dst = HERE / name
    if dst.exists() or dst.is_symlink():
        shutil.rmtree(dst)
    shutil.copytree(SOURCE, dst)
    (dst / "model.skops").write_bytes(b"placeholder: the real weights are not needed here\n")
    return dst


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def main() -> None:
    d = _copy("invalid-yaml")
    _edit(d / "MLmodel", "  python_function:\n", "  python_function:\n   bad: [unclosed\n")

    d = _copy("no-mlmodel")
    (d / "MLmodel").unlink()

    d = _copy("missing-data")
    (d / "model.skops").unlink()

    d = _copy("bad-requirement")
    _edit(d / "requirements.txt", "scikit-learn==", "scikit-learn=")

    d = _copy("escape-dotdot")
    _edit(d / "MLmodel", "model_path: model.skops", "model_path: ../../outside.skops")

    d = _copy("escape-absolute")
    _edit(d / "MLmodel", "model_path: model.skops", "model_path: /etc/passwd")

    d = _copy("escape-symlink")
    (d / "model.skops").unlink()
    os.symlink("/etc/hostname", d / "model.skops")

    d = _copy("example-mismatch")
    example = json.loads((d / "input_example.json").read_text())
    example["columns"][example["columns"].index("age")] = "age_years"
    col = example["columns"].index("education")
    for row in example["data"]:
        row[col] = 3
    (d / "input_example.json").write_text(json.dumps(example))

    d = _copy("bad-signature")
    _edit(d / "MLmodel", "inputs: '[{", "inputs: '[{{")

    d = _copy("bad-conda-yaml")
    (d / "conda.yaml").write_text("channels:\n- conda-forge\ndependencies: [python=3.11\n")

    d = _copy("many-problems")
    (d / "model.skops").unlink()
    _edit(d / "requirements.txt", "numpy==", "numpy=")
    _edit(
        d / "MLmodel", "artifact_path: input_example.json", "artifact_path: ../input_example.json"
    )


if __name__ == "__main__":
    main()

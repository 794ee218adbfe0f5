"""(Re)generate the model corpus of issue #14 with real MLflow in per-version venvs.

For each group (one MLflow version on one Python) this makes a venv with uv under
~/.cache/envbuild-corpus/venvs/, installs the group's pins, and runs one script per model
from tests/corpus/scripts/ with that venv's python. The script saves the model with MLflow
and writes expected_predictions.json from MLflow's own load + predict. This file then adds
a copy without the input example, derives the "as authors leave them" variants, and
writes tests/corpus/manifest.json.

    python tests/corpus/generate.py --list
    python tests/corpus/generate.py                       # every group, then variants
    python tests/corpus/generate.py --group mlflow1.30-py3.8
    python tests/corpus/generate.py --only mlflow2.9.2-py3.9-lightgbm
    python tests/corpus/generate.py --variants            # variants only, from models/

Runs on the project's own Python (3.10+, stdlib only) with `uv` on PATH; needs pyenv's
CPythons (``$(pyenv root)/versions/3.X.*``) and PyPI.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "scripts"
MODELS = HERE / "models"
MANIFEST = HERE / "manifest.json"
VENVS = Path(os.environ.get("ENVBUILD_CORPUS_VENVS", "~/.cache/envbuild-corpus/venvs")).expanduser()
# the local CPU wheel of torch is only seen by pip (see the README)
TORCH_PIP = ["torch==2.13.0"]
EXAMPLE_FILES = ("input_example.json", "serving_input_example.json")


@dataclasses.dataclass(frozen=True)
class Spec:
    """One model: ``script`` saves it, ``args`` choose the variant of that script."""

    slug: str
    flavor: str
    script: str
    args: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Group:
    mlflow: str
    python: str
    pins: tuple[str, ...]
    models: tuple[Spec, ...]
    pip_pins: tuple[str, ...] = ()
    # a second venv for the same (MLflow, Python): heavy flavors kept out of the main one,
    # so that MLflow's requirement inference does not see them beside the other models
    extra: str = ""

    @property
    def prefix(self) -> str:
        return f"mlflow{self.mlflow}-py{self.python}"

    @property
    def name(self) -> str:
        return f"{self.prefix}-{self.extra}" if self.extra else self.prefix


SK_PICKLE = Spec("sklearn-pickle", "sklearn", "sklearn_model.py", ("--serialization", "pickle"))
SK_CLOUD = Spec(
    "sklearn-cloudpickle", "sklearn", "sklearn_model.py", ("--serialization", "cloudpickle")
)
SK_SKOPS = Spec("sklearn-skops", "sklearn", "sklearn_model.py", ("--serialization", "skops"))
PYFUNC_CODE = Spec("pyfunc-code-paths", "pyfunc", "pyfunc_code_paths.py")
PYFUNC_ART = Spec("pyfunc-artifacts", "pyfunc", "pyfunc_artifacts.py")
FROM_CODE = Spec("pyfunc-models-from-code", "pyfunc", "pyfunc_from_code.py")
XGB_BOOSTER = Spec("xgboost-booster", "xgboost", "xgboost_model.py", ("--api", "booster"))
XGB_SKLEARN = Spec("xgboost-sklearn", "xgboost", "xgboost_model.py", ("--api", "sklearn"))
LGB = Spec("lightgbm", "lightgbm", "lightgbm_model.py")
STATS = Spec("statsmodels", "statsmodels", "statsmodels_model.py")
CATBOOST = Spec("catboost", "catboost", "catboost_model.py")
ONNX = Spec("onnx", "onnx", "onnx_model.py")
TORCH = Spec("pytorch", "pytorch", "pytorch_model.py")
HF = Spec("transformers", "transformers", "transformers_model.py")
LANGCHAIN = Spec("langchain-models-from-code", "langchain", "langchain_from_code.py")
PROPHET = Spec("prophet", "prophet", "prophet_model.py")
KERAS = Spec("tensorflow-keras", "tensorflow", "tensorflow_model.py")
SPARK = Spec("spark", "spark", "spark_model.py")

# Pins: the model's own libraries are pinned; MLflow's other dependencies are left to the
# resolver (as an author's `pip install mlflow==X` leaves them). Each set was checked with
# `uv pip install --dry-run` for that Python. MLflow <= 2.16 imports pkg_resources, hence
# setuptools < 81.
_MLFLOW3 = (
    "mlflow==3.17.2",
    "scikit-learn==1.9.1",
    "numpy==2.4.6",
    "pandas==3.1.1",
    "scipy==1.17.1",
    "skops==0.16.0",
    "skl2onnx==1.20.0",
    "onnx==1.23.2",
    "onnxruntime==1.32.0",
    "catboost==1.2.10",
    "lightgbm==4.7.0",
    "cloudpickle==3.1.3",
)
_MLFLOW3_MODELS = (SK_SKOPS, ONNX, CATBOOST, LGB, FROM_CODE)

GROUPS: tuple[Group, ...] = (
    Group(
        "1.30.1",
        "3.7",
        (
            "mlflow==1.30.1",
            "scikit-learn==1.0.2",  # the last releases for Python 3.7
            "numpy==1.21.6",
            "pandas==1.3.5",
            "setuptools==68.0.0",
        ),
        (SK_PICKLE,),
    ),
    Group(
        "1.30.1",
        "3.8",
        (
            "mlflow==1.30.1",
            "scikit-learn==1.2.2",
            "numpy==1.23.5",
            "pandas==1.5.3",
            "cloudpickle==2.2.1",
            "setuptools==68.2.2",
        ),
        (SK_PICKLE, SK_CLOUD, PYFUNC_CODE),
    ),
    Group(
        "2.9.2",
        "3.9",
        (
            "mlflow==2.9.2",
            "scikit-learn==1.3.2",
            "numpy==1.26.4",
            "pandas==2.1.4",
            "xgboost==2.0.3",
            "lightgbm==4.1.0",
            "statsmodels==0.14.1",
            "setuptools==68.2.2",
        ),
        (SK_PICKLE, XGB_BOOSTER, XGB_SKLEARN, LGB, STATS),
    ),
    Group(
        "2.22.5",
        "3.10",
        (
            "mlflow==2.22.5",
            "scikit-learn==1.5.2",
            "numpy==1.26.4",
            "pandas==2.2.3",
            "cloudpickle==3.1.1",
        ),
        (SK_CLOUD, PYFUNC_ART, FROM_CODE),
    ),
    Group("3.17.2", "3.11", _MLFLOW3, (*_MLFLOW3_MODELS, TORCH), pip_pins=tuple(TORCH_PIP)),
    Group("3.17.2", "3.12", _MLFLOW3, _MLFLOW3_MODELS),
    Group("3.17.2", "3.13", _MLFLOW3, _MLFLOW3_MODELS),
    # the heavier flavors, one venv each
    Group(
        "3.17.2",
        "3.11",
        ("mlflow==3.17.2", "numpy==2.4.6", "pandas==3.1.1", "transformers==5.24.0"),
        (HF,),
        pip_pins=tuple(TORCH_PIP),
        extra="transformers",
    ),
    Group(
        "3.17.2",
        "3.12",
        (
            "mlflow==3.17.2",
            "langchain==1.5.2",
            "langchain-core==1.8.3",
            "langchain-community==0.4.2",
        ),
        (LANGCHAIN,),
        extra="langchain",
    ),
    Group(
        "3.17.2",
        "3.12",
        ("mlflow==3.17.2", "prophet==1.5.0", "cmdstanpy==1.3.2"),
        (PROPHET,),
        extra="prophet",
    ),
    Group(
        "3.17.2",
        "3.12",
        ("mlflow==3.17.2", "tensorflow-cpu==2.21.0", "keras==3.15.1"),
        (KERAS,),
        extra="tensorflow",
    ),
    # pyspark from PyPI; saving and loading start a local Spark, so a Java runtime (17+ for
    # pyspark 4) must be on the generating machine
    Group(
        "3.17.2",
        "3.11",
        ("mlflow==3.17.2", "numpy==2.4.6", "pandas==3.1.1", "pyspark==4.1.1"),
        (SPARK,),
        extra="spark",
    ),
)


def model_name(group: Group, spec: Spec) -> str:
    return f"{group.prefix}-{spec.slug}"


# ----------------------------------------------------------------------------------------
# venvs
# ----------------------------------------------------------------------------------------


def pyenv_python(minor: str) -> Path:
    """The newest pyenv CPython of this minor version."""
    root = os.environ.get("PYENV_ROOT")
    if not root:
        try:
            root = subprocess.run(
                ["pyenv", "root"], check=True, capture_output=True, text=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            root = str(Path("~/.pyenv").expanduser())
    found = sorted(
        Path(root, "versions").glob(f"{minor}.*"),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.name)],
    )
    found = [p for p in found if re.fullmatch(rf"{re.escape(minor)}\.\d+", p.name)]
    if not found:
        raise SystemExit(f"no CPython {minor} under {root}/versions")
    return found[-1] / "bin" / "python"


def uv() -> str:
    exe = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(exe).exists():
        raise SystemExit("uv not found (pip install uv)")
    return exe


def run(cmd: list[str], **kw: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def venv_for(group: Group) -> Path:
    """The group's venv, made again only when its pins changed."""
    venv = VENVS / group.name
    stamp = venv / ".corpus-pins"
    want = "\n".join(("# uv venv --seed", *group.pins, *group.pip_pins)) + "\n"
    if stamp.is_file() and stamp.read_text() == want:
        return venv
    if venv.exists():
        shutil.rmtree(venv)
    VENVS.mkdir(parents=True, exist_ok=True)
    # --seed: with pip in the venv MLflow pins it in conda.yaml, as an author's venv has it
    run([uv(), "venv", "-q", "--seed", "--python", str(pyenv_python(group.python)), str(venv)])
    py = str(venv / "bin" / "python")
    if group.pip_pins:
        # pip first, so the packages uv adds next see torch already satisfied
        run([py, "-m", "pip", "install", "-q", *group.pip_pins])
    run([uv(), "pip", "install", "-q", "--python", py, *group.pins])
    stamp.write_text(want)
    return venv


# ----------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------


def _manifest() -> dict[str, dict[str, object]]:
    if MANIFEST.is_file():
        doc = json.loads(MANIFEST.read_text(encoding="utf-8"))
        return {m["name"]: m for m in doc["models"]}
    return {}


def _write_manifest(entries: dict[str, dict[str, object]]) -> None:
    doc = {
        "about": (
            "Models written by real MLflow (tests/corpus/generate.py); 'servable' is what a "
            "correct tool should achieve with the folder as it is, 'why' says why."
        ),
        "models": [entries[k] for k in sorted(entries)],
    }
    tmp = MANIFEST.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    tmp.replace(MANIFEST)


def _replace_dir(src: Path, dst: Path) -> None:
    if dst.exists():
        if not (dst / "MLmodel").exists() and not (dst / "corpus-variant.txt").exists():
            raise SystemExit(f"refusing to delete {dst}: not a corpus folder")
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dst)


def _drop_top_key(mlmodel: Path, key: str) -> None:
    """Remove one top-level key (and its indented block) from MLmodel, leaving the rest
    byte-for-byte as MLflow wrote it."""
    out: list[str] = []
    skipping = False
    for line in mlmodel.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith(f"{key}:"):
            skipping = True
            continue
        if skipping and (line.startswith((" ", "-")) or not line.strip()):
            continue
        skipping = False
        out.append(line)
    mlmodel.write_text("".join(out), encoding="utf-8")


def without_example(src: Path, dst: Path) -> None:
    """The same model as most authors leave it: no input example, so nothing to compare
    predictions with (expected_predictions.json goes too)."""
    _replace_dir(src, dst)
    for name in (*EXAMPLE_FILES, "expected_predictions.json"):
        (dst / name).unlink(missing_ok=True)
    _drop_top_key(dst / "MLmodel", "saved_input_example_info")


def _entry(
    name: str,
    flavor: str,
    group: Group | None,
    *,
    mlflow_version: str,
    python: str,
    variant: str,
    has_input_example: bool,
    servable: bool,
    why: str,
    derived_from: str | None = None,
    model_dir: str = ".",
) -> dict[str, object]:
    return {
        "name": name,
        "flavor": flavor,
        "mlflow_version": mlflow_version,
        "python": python,
        "variant": variant,
        "has_input_example": has_input_example,
        "servable": servable,
        "why": why,
        "model_dir": model_dir,
        "derived_from": derived_from,
        "group": group.name if group else None,
    }


def generate_group(group: Group, only: set[str] | None) -> list[str]:
    specs = [s for s in group.models if only is None or model_name(group, s) in only]
    if not specs:
        return []
    started = time.monotonic()
    venv = venv_for(group)
    print(f"{group.name}: venv ready in {time.monotonic() - started:.0f}s", flush=True)
    py = str(venv / "bin" / "python")
    entries = _manifest()
    done: list[str] = []
    for spec in specs:
        name = model_name(group, spec)
        with tempfile.TemporaryDirectory(prefix="envbuild-corpus-") as tmp:
            out = Path(tmp) / "model"
            env = dict(os.environ)
            env.pop("VIRTUAL_ENV", None)
            env.update(
                PYTHONHASHSEED="0",
                MLFLOW_TRACKING_URI=f"file://{tmp}/mlruns",
                MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true",
                CUDA_VISIBLE_DEVICES="",
            )
            t0 = time.monotonic()
            try:
                run([py, str(SCRIPTS / spec.script), str(out), *spec.args], cwd=tmp, env=env)
            except subprocess.CalledProcessError:
                print(f"FAILED {name}", flush=True)
                continue
            for cache in out.rglob("__pycache__"):
                shutil.rmtree(cache)
            _replace_dir(out, MODELS / name)
        print(f"{name}: {time.monotonic() - t0:.0f}s", flush=True)
        version = group.mlflow
        why = "written by MLflow with its own environment files; MLflow loads it"
        reqs = (MODELS / name / "requirements.txt").read_text(encoding="utf-8")
        if spec.flavor != "pytorch" and re.search(r"^torch==\S+\+cpu$", reqs, re.MULTILINE):
            why = (
                "MLflow's requirement inference pinned the training venv's torch (+cpu, a "
                "local build, not on PyPI) although the model does not use it: servable with "
                "the CPU wheel (--find-links) or once torch is dropped"
            )
        entries[name] = _entry(
            name,
            spec.flavor,
            group,
            mlflow_version=version,
            python=group.python,
            variant="none",
            has_input_example=True,
            servable=True,
            why=why,
        )
        bare = f"{name}-noexample"
        without_example(MODELS / name, MODELS / bare)
        entries[bare] = _entry(
            bare,
            spec.flavor,
            group,
            mlflow_version=version,
            python=group.python,
            variant="no-input-example",
            has_input_example=False,
            servable=True,
            why="same model without its input example: only load (or a synthesized "
            f"payload) can prove it; {why}",
            derived_from=name,
        )
        done += [name, bare]
        _write_manifest(entries)
    return done


# ----------------------------------------------------------------------------------------
# "as authors leave them": each derives one folder from a generated one
# ----------------------------------------------------------------------------------------


def _sub_line(path: Path, pattern: str, repl: str) -> None:
    text = path.read_text(encoding="utf-8")
    new, n = re.subn(pattern, repl, text, flags=re.MULTILINE)
    if not n:
        raise SystemExit(f"{path}: no line matches {pattern!r}")
    path.write_text(new, encoding="utf-8")


def variant_bare_mlflow(src: Path, dst: Path) -> str:
    """`mlflow` unpinned in requirements.txt and conda.yaml, as Azure's examples write it:
    today it resolves to an MLflow 3 next to a model written by 2.9.2."""
    _sub_line(dst / "requirements.txt", r"^mlflow==\S+$", "mlflow")
    _sub_line(dst / "conda.yaml", r"^(\s+- )mlflow==\S+$", r"\1mlflow")
    return "unpinned mlflow; the pinned flavor libraries still load the model"


def variant_disagree(src: Path, dst: Path) -> str:
    """requirements.txt edited after saving: another lightgbm than conda.yaml names, and
    MLmodel's python_version another than conda.yaml's python."""
    _sub_line(dst / "requirements.txt", r"^lightgbm==\S+$", "lightgbm==3.3.5")
    _sub_line(dst / "MLmodel", r"^(\s+python_version: )\S+$", r"\g<1>3.8.18")
    return (
        "files disagree (lightgbm 3.3.5 vs conda.yaml's 4.1.0, python 3.8.18 vs 3.9): "
        "servable from conda.yaml; a tool must report the disagreement and say what it follows"
    )


def variant_no_python_env(src: Path, dst: Path) -> str:
    """python_env.yaml deleted while MLmodel still names it; conda.yaml remains."""
    (dst / "python_env.yaml").unlink()
    return "MLflow falls back to conda.yaml when python_env.yaml is missing"


def _lfs_pointer(path: Path) -> None:
    data = path.read_bytes()
    oid = hashlib.sha256(data).hexdigest()
    path.write_text(
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n",
        encoding="utf-8",
    )


def variant_lfs_pointer(src: Path, dst: Path) -> str:
    """The model file is a Git LFS pointer (cloned without `git lfs pull`)."""
    _lfs_pointer(dst / "model.pkl")
    return "not servable: model.pkl is a Git LFS pointer, not the model"


REPO_README = """# Credit default model

Trained in `notebooks/train.ipynb`, logged with MLflow; the model is in `outputs/model/`.
"""
REPO_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": 1,
            "metadata": {},
            "outputs": [],
            "source": [
                "import mlflow\n",
                "from sklearn.linear_model import LogisticRegression\n",
                "mlflow.sklearn.save_model(clf, '../outputs/model')\n",
            ],
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}
REPO_CI = """name: ci
on: [push]
jobs:
  train:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: pip install -r outputs/model/requirements.txt
"""
# Obviously fake: AWS's documented example key pair.
REPO_SECRETS = """AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
"""


def variant_repo_root(src: Path, dst: Path) -> str:
    """A repository checkout with the model in outputs/model/ beside a notebook, a README,
    a CI workflow and a secrets file that must never reach an image."""
    model = dst / "outputs" / "model"
    tmp = dst.with_name(dst.name + ".tmp")
    dst.rename(tmp)
    model.parent.mkdir(parents=True)
    tmp.rename(model)
    (dst / "README.md").write_text(REPO_README, encoding="utf-8")
    (dst / "notebooks").mkdir()
    (dst / "notebooks" / "train.ipynb").write_text(
        json.dumps(REPO_NOTEBOOK, indent=1) + "\n", encoding="utf-8"
    )
    (dst / ".github" / "workflows").mkdir(parents=True)
    (dst / ".github" / "workflows" / "ci.yml").write_text(REPO_CI, encoding="utf-8")
    (dst / "codes").mkdir()
    (dst / "codes" / "credentials.env").write_text(REPO_SECRETS, encoding="utf-8")
    (dst / "corpus-variant.txt").write_text("repository root around outputs/model\n")
    return "servable from outputs/model; nothing outside it (secrets) may be copied"


def variant_torch_unpinned(src: Path, dst: Path) -> str:
    """`torch` unpinned in requirements.txt on a CPU model: PyPI's default is a CUDA build."""
    _sub_line(dst / "requirements.txt", r"^torch==\S+$", "torch")
    return "servable on the CPU; PyPI's torch is a CUDA build of several GB"


def variant_no_env_files(src: Path, dst: Path) -> str:
    """conda.yaml, python_env.yaml and requirements.txt all gone (copied out of a run's
    artifacts by hand); MLmodel still names them."""
    for name in ("conda.yaml", "python_env.yaml", "requirements.txt"):
        (dst / name).unlink()
    return (
        "no environment files: servable from the flavors (xgboost 2.0.3, sklearn API) and "
        "mlflow_version, with a finding"
    )


@dataclasses.dataclass(frozen=True)
class Variant:
    slug: str
    source: str
    make: Callable[[Path, Path], str]
    model_dir: str = "."
    servable: bool = True


VARIANTS: tuple[Variant, ...] = (
    Variant("bare-mlflow", "mlflow2.9.2-py3.9-sklearn-pickle", variant_bare_mlflow),
    Variant("disagreeing-files", "mlflow2.9.2-py3.9-lightgbm", variant_disagree),
    Variant("no-python-env", "mlflow2.22.5-py3.10-sklearn-cloudpickle", variant_no_python_env),
    Variant(
        "lfs-pointer", "mlflow1.30.1-py3.8-sklearn-pickle", variant_lfs_pointer, servable=False
    ),
    Variant("repo-root", "mlflow3.17.2-py3.12-sklearn-skops", variant_repo_root, "outputs/model"),
    Variant("no-env-files", "mlflow2.9.2-py3.9-xgboost-sklearn", variant_no_env_files),
    Variant("torch-unpinned", "mlflow3.17.2-py3.11-pytorch", variant_torch_unpinned),
)


def generate_variants(only: set[str] | None) -> list[str]:
    entries = _manifest()
    done: list[str] = []
    for v in VARIANTS:
        name = f"{v.source}-{v.slug}"
        if only is not None and name not in only:
            continue
        src = MODELS / v.source
        if v.source not in entries or not src.is_dir():
            print(f"skip variant {name}: {v.source} was not generated", flush=True)
            continue
        _replace_dir(src, MODELS / name)
        why = v.make(src, MODELS / name)
        base = entries[v.source]
        entries[name] = _entry(
            name,
            str(base["flavor"]),
            None,
            mlflow_version=str(base["mlflow_version"]),
            python=str(base["python"]),
            variant=v.slug,
            has_input_example=bool(base["has_input_example"]),
            servable=v.servable,
            why=why,
            derived_from=v.source,
            model_dir=v.model_dir,
        )
        entries[name]["group"] = base["group"]
        done.append(name)
        _write_manifest(entries)
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--group", action="append", help="only this group (repeatable)")
    ap.add_argument("--only", action="append", help="only this model name (repeatable)")
    ap.add_argument("--variants", action="store_true", help="only derive the variants")
    ap.add_argument("--list", action="store_true", help="print groups and models, do nothing")
    opts = ap.parse_args(argv)
    only = set(opts.only) if opts.only else None
    if opts.list:
        for g in GROUPS:
            print(g.name, " ".join(g.pins + g.pip_pins))
            for s in g.models:
                print("  ", model_name(g, s), s.script, *s.args)
        for v in VARIANTS:
            print("variant", f"{v.source}-{v.slug}")
        return 0
    done: list[str] = []
    if not opts.variants:
        for g in GROUPS:
            if opts.group and g.name not in opts.group:
                continue
            done += generate_group(g, only)
    done += generate_variants(only)
    print(f"generated {len(done)} folders", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Inference against a real, purpose-built training environment: a uv venv with tiny wheels
installed for real (a namespace package split over two distributions, a dependency chain
to prune, a local version label) and a real editable install (an in-tree PEP 660 build
backend, so no network is needed). Each test checks the exact requirement or finding."""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from envbuild.findings import Finding, Severity
from envbuild.infer import infer
from envbuild.installed import InstalledEnv, inspect_env
from envbuild.read import read_model
from tests.helpers import DATA, run_envbuild

PICKLES = DATA / "pickles"

pytestmark = [pytest.mark.venv]


def _uv() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def make_wheel(
    folder: Path, name: str, version: str, files: dict[str, str], requires: tuple[str, ...] = ()
) -> Path:
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    content = {
        **files,
        f"{info}/METADATA": meta,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [_record_line(p, t.encode()) for p, t in content.items()] + [f"{info}/RECORD,,"]
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for p, t in content.items():
            whl.writestr(p, t)
        whl.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


BACKEND = '''
"""A minimal in-tree PEP 517/660 backend: builds acme-edit without any download."""
import base64, hashlib, os, zipfile

NAME, VERSION = "acme_edit", "0.3.0"
HERE = os.path.dirname(os.path.abspath(__file__))

def _wheel(directory, files):
    info = f"{NAME}-{VERSION}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\\nName: acme-edit\\nVersion: {VERSION}\\n"
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    lines = []
    for p, t in files.items():
        d = base64.urlsafe_b64encode(hashlib.sha256(t.encode()).digest()).rstrip(b"=").decode()
        lines.append(f"{p},sha256={d},{len(t.encode())}")
    lines.append(f"{info}/RECORD,,")
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, name), "w") as whl:
        for p, t in files.items():
            whl.writestr(p, t)
        whl.writestr(f"{info}/RECORD", "\\n".join(lines) + "\\n")
    return name

def get_requires_for_build_wheel(config_settings=None):
    return []

def get_requires_for_build_editable(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    src = os.path.join(HERE, "src", NAME, "__init__.py")
    return _wheel(wheel_directory, {f"{NAME}/__init__.py": open(src).read()})

def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {f"_{NAME}.pth": os.path.join(HERE, "src") + "\\n"})
'''


@pytest.fixture(scope="module")
def training(tmp_path_factory: pytest.TempPathFactory) -> InstalledEnv:
    base = tmp_path_factory.mktemp("acme")
    wheels = base / "wheels"
    wheels.mkdir()
    built = [
        make_wheel(wheels, "acme-core", "1.0", {"acme_core/__init__.py": ""}),
        make_wheel(wheels, "acme-util", "1.1", {"acme_util/__init__.py": ""}),
        make_wheel(
            wheels, "acme-ml", "2.0", {"acme_ml/__init__.py": ""}, ("acme-core>=1", "acme-util")
        ),
        # one namespace package (PEP 420, no __init__.py) split over two distributions
        make_wheel(wheels, "acme-ns-alpha", "1.0", {"acme_ns/alpha/__init__.py": ""}),
        make_wheel(wheels, "acme-ns-beta", "1.0", {"acme_ns/beta/__init__.py": ""}),
        make_wheel(wheels, "acme-gpu", "1.0+cu121", {"acme_gpu/__init__.py": ""}),
    ]
    project = base / "acme-edit"
    (project / "src" / "acme_edit").mkdir(parents=True)
    (project / "src" / "acme_edit" / "__init__.py").write_text("VALUE = 1\n")
    (project / "backend.py").write_text(BACKEND)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
    )
    venv = base / "venv"
    done = subprocess.run(
        [_uv(), "venv", "--python", sys.executable, str(venv)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    py = venv / "bin" / "python"
    for args in (
        ["--offline", "--no-index", *map(str, built)],
        ["--offline", "--no-index", "-e", str(project)],
    ):
        done = subprocess.run(
            [_uv(), "pip", "install", "--python", str(py), *args], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    check = subprocess.run(
        [str(py), "-c", "import acme_edit, acme_ns.alpha, acme_ns.beta; print(acme_edit.VALUE)"],
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip() == "1", check.stderr  # the editable install really works
    return inspect_env(py)


MLMODEL = """\
flavors:
  python_function:
    loader_module: acme_loader
    code: code
    python_version: {python}
mlflow_version: 3.17.2
"""

LOADER = """\
import acme_ml
import acme_core
from acme_ns import alpha
import acme_gpu
import acme_edit
import not_installed_anywhere
try:
    import optional_missing
except ImportError:
    optional_missing = None
from . import helpers


def _load_pyfunc(path):
    return acme_ml
"""


def _pickle_global(module: str, name: str, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A real pickle.dumps of a function that lives in ``module`` (registered for the
    pickler only; nothing of it is installed in this interpreter)."""

    def fn() -> None:
        return None

    fn.__module__, fn.__qualname__, fn.__name__ = module, name, name
    mod = types.ModuleType(module)
    setattr(mod, name, fn)
    monkeypatch.setitem(sys.modules, module, mod)
    return pickle.dumps(fn, protocol=4)


@pytest.fixture
def clean_model(tmp_path: Path, training: InstalledEnv, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "model"
    (folder / "code").mkdir(parents=True)
    (folder / "MLmodel").write_text(MLMODEL.format(python=training.python_version))
    (folder / "code" / "acme_loader.py").write_text(LOADER)
    (folder / "code" / "helpers.py").write_text("import acme_core\n")
    (folder / "model.pkl").write_bytes(_pickle_global("acme_util", "helper", monkeypatch))
    return folder


def test_requirements_exact(clean_model: Path, training: InstalledEnv) -> None:
    inf = infer(read_model(clean_model), training)
    assert [r.raw for r in inf.spec.requirements] == [
        "acme-core==1.0",  # implied by acme-ml, but the model's code imports it
        "acme-edit==0.3.0",
        "acme-gpu==1.0",  # local label +cu121 dropped (no index serves it)
        "acme-ml==2.0",
        "acme-ns-alpha==1.0",  # the namespace's provider actually used; not acme-ns-beta
    ]
    assert inf.spec.options == ()
    assert inf.spec.python is not None and inf.spec.python.version == training.python_version
    pruned = {p.name: p.implied_by for p in inf.pruned}
    assert pruned == {"acme-util": ("acme-ml",)}
    util = inf.explain("acme-util")
    assert util["status"] == "pruned"
    assert util["why"][0].startswith("pickle stack_global acme_util.helper at model.pkl@")


def test_namespace_resolution(training: InstalledEnv) -> None:
    assert [d.name for d in training.providers("acme_ns.alpha")] == ["acme-ns-alpha"]
    assert [d.name for d in training.providers("acme_ns.beta.sub")] == ["acme-ns-beta"]
    assert {d.name for d in training.providers("acme_ns")} == {"acme-ns-alpha", "acme-ns-beta"}


def test_findings_exact(clean_model: Path, training: InstalledEnv) -> None:
    inf = infer(read_model(clean_model), training)
    by_code: dict[str, list[Finding]] = {}
    for f in inf.findings:
        by_code.setdefault(f.code, []).append(f)
    # not reproducible elsewhere: the editable project, and the wheels installed from files
    local = {f.message.split(" is installed ")[0]: f for f in by_code["EB203"]}
    assert set(local) == {
        "acme-edit 0.3.0",
        "acme-core 1.0",
        "acme-gpu 1.0+cu121",
        "acme-ml 2.0",
        "acme-ns-alpha 1.0",
    }
    assert all(f.severity is Severity.WARNING for f in local.values())
    assert local["acme-edit 0.3.0"].message.startswith(
        "acme-edit 0.3.0 is installed editable (file://"
    )
    assert " is installed from a local file (file://" in local["acme-ml 2.0"].message
    labels = by_code["EB207"]
    assert [f.message for f in labels] == [
        "acme-gpu 1.0+cu121 is a local build (+cu121); wrote acme-gpu==1.0"
    ]
    missing = {f.message.split("'")[1]: f.severity for f in by_code["EB202"]}
    assert missing == {
        "not_installed_anywhere": Severity.WARNING,
        "optional_missing": Severity.INFO,  # guarded by try/except ImportError
    }
    assert "EB200" not in by_code and "EB501" not in by_code


def test_no_prune(clean_model: Path, training: InstalledEnv) -> None:
    inf = infer(read_model(clean_model), training, prune=False)
    assert "acme-util==1.1" in [r.raw for r in inf.spec.requirements]
    assert inf.pruned == ()


def test_main_unsafe_and_missing_pickles(
    tmp_path: Path, training: InstalledEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: acme_ml\n"
        f"    python_version: {training.python_version}\n"
    )
    shutil.copy(PICKLES / "main_ref.pkl", folder / "main.pkl")
    shutil.copy(PICKLES / "dangerous_system.pkl", folder / "payload.pkl")
    (folder / "ghost.pkl").write_bytes(_pickle_global("ghost_pkg", "Thing", monkeypatch))
    inf = infer(read_model(folder), training)
    got = {(f.code, f.severity, f.location.file) for f in inf.findings}
    assert ("EB200", Severity.ERROR, "main.pkl") in got
    assert ("EB501", Severity.UNSAFE, "payload.pkl") in got
    assert ("EB201", Severity.ERROR, "ghost.pkl") in got
    main = next(f for f in inf.findings if f.code == "EB200")
    assert "references __main__.Thing" in main.message
    assert [r.raw for r in inf.spec.requirements] == ["acme-ml==2.0"]
    # the CLI fails on them (exit 1) and the payload never ran
    done = run_envbuild(
        "infer", str(folder), "--python", training.executable, "--dry-run", "--format", "json"
    )
    assert done.returncode == 1
    assert {"EB200", "EB201", "EB501"} <= {f["code"] for f in json.loads(done.stdout)["findings"]}
    assert not (tmp_path / "ENVBUILD_PWNED").exists()
    assert not (folder / "ENVBUILD_PWNED").exists()


@pytest.mark.docker
def test_introspection_runs_on_python_3_8() -> None:
    from envbuild.installed import introspection_source

    done = subprocess.run(
        ["docker", "run", "--rm", "-i", "python:3.8-slim", "python", "-c", introspection_source()],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["python_version"].startswith("3.8.")
    assert "json" in doc["stdlib"] and "asyncio" in doc["stdlib"]  # no stdlib_module_names on 3.8
    assert "pip" in {d["canonical"] for d in doc["distributions"]}

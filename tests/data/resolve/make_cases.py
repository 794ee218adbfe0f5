"""Regenerate the resolver's model folders and its tiny wheelhouse.

    python tests/data/resolve/make_cases.py

Each case is a copy of examples/sklearn-credit (a real MLflow model folder; the weights are
replaced by a placeholder, nothing here loads them) with its environment files edited.
The wheelhouse holds tiny pure-Python wheels (ebdemo-core 1.0/1.5/2.0, ebdemo-app 1.0
requiring ebdemo-core<2) written byte-for-byte reproducibly, for offline resolution.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[2] / "examples" / "sklearn-credit"


def _copy(name: str, requirements: str, python: str | None = None) -> Path:
    dst = HERE / name
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(SOURCE, dst)
    (dst / "model.skops").write_bytes(b"placeholder: the real weights are not needed here\n")
    (dst / "requirements.txt").write_text(requirements)
    if python:
        _edit(dst / "MLmodel", "python_version: 3.11.7", f"python_version: {python}")
        _edit(dst / "conda.yaml", "python=3.11.7", f"python={python}")
        _edit(dst / "python_env.yaml", "python: 3.11.7", f"python: {python}")
    return dst


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def _wheel(folder: Path, name: str, version: str, requires: list[str]) -> None:
    dist = f"{name.replace('-', '_')}-{version}"
    files = {
        f"{name.replace('-', '_')}/__init__.py": f'__version__ = "{version}"\n',
        f"{dist}.dist-info/METADATA": "Metadata-Version: 2.1\n"
        f"Name: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: make_cases\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(folder / f"{dist}-py3-none-any.whl", "w") as zf:
        for path, text in files.items():
            info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, text)


def main() -> None:
    # two contradictory pins of one package (requirements.txt lines 4 and 8)
    d = _copy(
        "contradictory-pins",
        "mlflow==3.17.2\nnumpy==2.4.6\npandas==3.1.1\nscikit-learn==1.9.1\nscipy==1.17.1\n"
        "skops==0.16.0\ntorch==2.13.0\nscikit-learn==1.3.0\n",
    )
    # a pin that needs a newer Python than the model's (3.10): scikit-learn 1.9.1 needs 3.11
    _copy("needs-newer-python", "scikit-learn==1.9.1\nscipy==1.15.3\n", python="3.10.14")
    # a transitive conflict: pandas 2.2.3 needs numpy>=1.22.4 on Python 3.10
    _copy("transitive-conflict", "numpy==1.21.6\npandas==2.2.3\n", python="3.10.14")
    # the model's files disagree about the Python
    d = _copy("python-disagree", (SOURCE / "requirements.txt").read_text())
    _edit(d / "python_env.yaml", "python: 3.11.7", "python: 3.10.14")
    # static problems: a marker excluding a line on linux, an unpinned line, a duplicate,
    # conda-only entries
    d = _copy(
        "static-mix",
        "numpy==2.4.6\npywin32==306; sys_platform == 'win32'\nrequests\npandas>=2.0\npandas<4\n",
    )
    _edit(
        d / "conda.yaml", "- pip<=23.2.1\n", "- pip<=23.2.1\n- cudatoolkit=11.8\n- lightgbm=4.3.0\n"
    )
    # resolved offline from the tiny wheelhouse
    _copy("wheelhouse-ok", "ebdemo-app==1.0\n")
    _copy("wheelhouse-conflict", "ebdemo-app==1.0\nebdemo-core==2.0\n")
    wheels = HERE / "wheelhouse"
    if wheels.exists():
        shutil.rmtree(wheels)
    wheels.mkdir()
    _wheel(wheels, "ebdemo-core", "1.0", [])
    _wheel(wheels, "ebdemo-core", "1.5", [])
    _wheel(wheels, "ebdemo-core", "2.0", [])
    _wheel(wheels, "ebdemo-app", "1.0", ["ebdemo-core>=1.0,<2"])


if __name__ == "__main__":
    main()

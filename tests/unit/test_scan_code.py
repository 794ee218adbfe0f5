"""Import scanning of the code a model carries, by AST."""

from __future__ import annotations

from pathlib import Path

from envbuild.scan import RefKind
from envbuild.scan.code import imports_in, scan_code
from tests.helpers import EXAMPLES

SOURCE = """
import json, os.path
import numpy as np
from google.cloud import storage
from sklearn import linear_model as lm
from . import sibling
from .helpers import thing
try:
    import ujson
except ImportError:
    ujson = None
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    import pandas

class Model:
    def predict(self, x):
        import scipy.special
        mod = importlib.import_module("lightgbm")
        return scipy.special.expit(x)
"""


def test_imports_by_ast() -> None:
    found = {(i.module, i.line, i.optional, i.kind, i.relative) for i in imports_in(SOURCE)}
    assert ("json", 2, False, RefKind.IMPORT, False) in found
    assert ("os.path", 2, False, RefKind.IMPORT, False) in found
    assert ("numpy", 3, False, RefKind.IMPORT, False) in found
    # from-imports name the submodule, so namespace packages resolve to the right provider
    assert ("google.cloud.storage", 4, False, RefKind.IMPORT, False) in found
    assert ("sklearn.linear_model", 5, False, RefKind.IMPORT, False) in found
    assert ("", 6, True, RefKind.IMPORT, True) in found
    assert ("helpers", 7, True, RefKind.IMPORT, True) in found
    assert ("ujson", 9, True, RefKind.IMPORT, False) in found  # try/except ImportError
    assert ("pandas", 14, True, RefKind.IMPORT, False) in found  # TYPE_CHECKING
    assert ("scipy.special", 18, False, RefKind.IMPORT, False) in found  # inside a method
    assert ("lightgbm", 19, False, RefKind.DYNAMIC_IMPORT, False) in found


def test_scan_code_folder_marks_local_modules(tmp_path: Path) -> None:
    code = tmp_path / "code"
    (code / "mypkg").mkdir(parents=True)
    (code / "mypkg" / "__init__.py").write_text("from .core import f\nimport requests\n")
    (code / "mypkg" / "core.py").write_text("import mypkg\nimport helper\n")
    (code / "helper.py").write_text("import yaml\n")
    (code / "broken.py").write_text("def (:\n")
    scans = scan_code(tmp_path, code_dirs=["code"])
    by_file = {s.file: s for s in scans}
    assert set(by_file) == {
        "code/broken.py",
        "code/helper.py",
        "code/mypkg/__init__.py",
        "code/mypkg/core.py",
    }
    assert set(by_file["code/helper.py"].local_modules) == {"broken", "helper", "mypkg"}
    assert [(r.module, r.line) for r in by_file["code/mypkg/__init__.py"].refs] == [("requests", 2)]
    broken = by_file["code/broken.py"]
    assert [f.code for f in broken.findings] == ["EB212"]
    assert broken.findings[0].location.file == "code/broken.py"
    assert broken.findings[0].location.line == 1


def test_example_code_predict_time_import() -> None:
    scans = scan_code(EXAMPLES / "pyfunc-custom", code_dirs=["code"])
    refs = {(r.module, r.line) for s in scans for r in s.refs}
    assert ("scipy.special", 37) in refs  # imported only inside predict()
    assert ("joblib", 29) in refs
    assert scans[0].local_modules == ("credit_scorer",)

"""The static pickle scanner on real files written by pickle, joblib, cloudpickle, torch and
skops (tests/data/pickles/make_pickles.py; the skops file is an example model's)."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from envbuild.findings import Severity
from envbuild.scan import RefKind, scan_model
from envbuild.scan.pickles import scan_file, scan_pickle_bytes, unsafe_reason
from tests.helpers import DATA, EXAMPLES

PICKLES = DATA / "pickles"


def scan(name: str):  # type: ignore[no-untyped-def]
    result = scan_file(PICKLES / name, name)
    assert result is not None
    return result


def pairs(result) -> set[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    return {(r.module, r.name) for r in result.refs}


def test_protocol_0_globals_with_offsets() -> None:
    result = scan("plain_p0.pkl")
    assert result.format == "pickle"
    assert ("collections", "OrderedDict") in pairs(result)
    assert ("numpy._core.multiarray", "_reconstruct") in pairs(result)
    assert {r.kind for r in result.refs} == {RefKind.GLOBAL}
    data = (PICKLES / "plain_p0.pkl").read_bytes()
    first = next(r for r in result.refs if r.name == "OrderedDict")
    assert data[first.offset : first.offset + 25] == b"ccollections\nOrderedDict\n"
    assert result.findings == ()


@pytest.mark.parametrize(
    ("name", "kind"), [("sklearn_p2.pkl", RefKind.GLOBAL), ("sklearn_p5.pkl", RefKind.STACK_GLOBAL)]
)
def test_sklearn_pickles_protocols_2_and_5(name: str, kind: RefKind) -> None:
    result = scan(name)
    assert ("sklearn.linear_model._logistic", "LogisticRegression") in pairs(result)
    ref = next(r for r in result.refs if r.name == "LogisticRegression")
    assert ref.kind is kind and ref.file == name and isinstance(ref.offset, int)
    # the estimator's state carries the version that wrote it
    assert [(h.distribution, h.version) for h in result.hints] == [("scikit-learn", "1.9.1")]
    assert result.findings == ()


@pytest.mark.parametrize("codec", [None, "zlib", "gzip", "bz2", "xz", "lzma"])
def test_joblib_steps_over_raw_arrays(codec: str | None) -> None:
    name = f"bundle.{codec}.joblib" if codec else "bundle.joblib"
    result = scan(name)
    assert result.format == ("joblib" if codec is None else f"joblib+{codec}")
    # the scaler is pickled after five arrays (raw bytes, and one nested object pickle):
    # it is found by parsing (not byte patterns) and nothing failed to parse
    scaler = [r for r in result.refs if r.name == "StandardScaler"]
    assert [r.kind for r in scaler] == [RefKind.STACK_GLOBAL]
    assert ("joblib.numpy_pickle", "NumpyArrayWrapper") in pairs(result)
    assert result.findings == ()
    assert {r.kind for r in result.refs} == {RefKind.STACK_GLOBAL}


def test_joblib_raw_array_bytes_really_sit_between_opcodes() -> None:
    # the file must hold the int32 array's raw bytes: otherwise the test above is vacuous
    import struct

    assert struct.pack("<5i", 0, 1, 2, 3, 4) in (PICKLES / "bundle.joblib").read_bytes()


def test_cloudpickle_subimports_and_code_by_value() -> None:
    result = scan("cloudpickle_byvalue.pkl")
    assert result.format == "cloudpickle"
    subs = {r.module for r in result.refs if r.kind is RefKind.SUBIMPORT}
    assert subs == {"numpy", "json"}
    assert [f.code for f in result.findings] == ["EB502"]
    assert result.findings[0].severity is Severity.WARNING
    # the by-value class and function do not reference __main__ as a global
    assert not any(r.module == "__main__" for r in result.refs)


def test_main_reference() -> None:
    result = scan("main_ref.pkl")
    assert [(r.module, r.name, r.kind) for r in result.refs] == [
        ("__main__", "Thing", RefKind.STACK_GLOBAL)
    ]


@pytest.mark.parametrize(
    ("name", "callable_"),
    [("dangerous_system.pkl", "posix.system"), ("dangerous_exec.pkl", "builtins.exec")],
)
def test_dangerous_pickle_is_unsafe_and_nothing_runs(
    name: str, callable_: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the payload would `touch ENVBUILD_PWNED` here
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(PICKLES / name, folder / "model.pkl")
    result = scan_model(folder)
    unsafe = [f for f in result.findings if f.code == "EB501"]
    assert len(unsafe) == 1
    assert unsafe[0].severity is Severity.UNSAFE
    assert f"references {callable_} at byte " in unsafe[0].message
    assert unsafe[0].location.file == "model.pkl"
    assert not (tmp_path / "ENVBUILD_PWNED").exists()


def test_the_dangerous_payload_is_real(tmp_path: Path) -> None:
    """Control: unpickling the file (in a child process) does create the marker, so the test
    above proves the scanner did not run it."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import pickle,sys; pickle.load(open(sys.argv[1],'rb'))",
            str(PICKLES / "dangerous_system.pkl"),
        ],
        cwd=tmp_path,
        check=False,
        capture_output=True,
    )
    assert (tmp_path / "ENVBUILD_PWNED").exists()


def test_torch_zip_scans_data_pkl() -> None:
    result = scan("torch_zip.pt")
    assert result.format == "torch-zip"
    assert ("torch.nn.modules.linear", "Linear") in pairs(result)
    assert {r.member for r in result.refs} == {"torch_zip/data.pkl"}
    assert result.findings == ()


def test_torch_legacy_format_continues_after_stop() -> None:
    # legacy torch.save writes a magic-number pickle, a protocol pickle, sys info, then the
    # object: the object's globals come after three STOPs
    result = scan("torch_legacy.pt")
    data = (PICKLES / "torch_legacy.pt").read_bytes()
    first_stop = data.index(b".")
    assert ("torch._utils", "_rebuild_tensor_v2") in pairs(result)
    assert all(r.offset > first_stop for r in result.refs if r.module.startswith("torch"))
    assert result.findings == ()


def test_skops_schema() -> None:
    path = EXAMPLES / "sklearn-credit" / "model.skops"
    result = scan_file(path, "model.skops")
    assert result is not None and result.format == "skops"
    assert ("sklearn.pipeline", "Pipeline") in pairs(result)
    assert {r.member for r in result.refs} == {"schema.json"}
    assert {r.kind for r in result.refs} == {RefKind.SKOPS}


def test_stack_global_from_memo() -> None:
    # protocol 4 memoizes the module string; the second global of the same module fetches
    # it back with BINGET: the scanner must resolve it through the memo
    import collections

    data = pickle.dumps([collections.OrderedDict(), collections.Counter()], protocol=4)
    assert b"h" in data  # BINGET present
    result = scan_pickle_bytes(data, "x.pkl")
    assert {("collections", "OrderedDict"), ("collections", "Counter")} <= pairs(result)


def test_truncated_pickle_falls_back_to_patterns() -> None:
    data = (PICKLES / "sklearn_p5.pkl").read_bytes()
    at = data.index(b"\x8c\x05numpy")
    broken = data[:at] + b"\xff" + data[at:]  # an unknown opcode before numpy's global
    result = scan_pickle_bytes(broken, "broken.pkl")
    assert [f.code for f in result.findings] == ["EB210"]
    assert f"past byte {at}" in result.findings[0].message
    kinds = {(r.module, r.name): r.kind for r in result.refs}
    assert kinds[("sklearn.linear_model._logistic", "LogisticRegression")] is RefKind.STACK_GLOBAL
    assert kinds[("numpy", "dtype")] is RefKind.HEURISTIC


def test_non_pickles_are_ignored(tmp_path: Path) -> None:
    # fixed bytes: random ones sometimes open with a byte sequence that reads as opcodes
    (tmp_path / "weights.bin").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(0x90, 0xD0)))
    (tmp_path / "notes.txt").write_text("hello")
    assert scan_model(tmp_path).files == ()


@pytest.mark.parametrize(
    ("module", "name", "unsafe"),
    [
        ("posix", "system", True),
        ("nt", "system", True),
        ("os", "system", True),
        ("subprocess", "Popen", True),
        ("subprocess", "check_output", True),
        ("builtins", "eval", True),
        ("__builtin__", "exec", True),
        ("builtins", "getattr", True),
        ("runpy", "run_path", True),
        ("importlib", "import_module", True),
        ("pty", "spawn", True),
        ("socket", "create_connection", True),
        ("shutil", "rmtree", True),
        ("webbrowser", "open", True),
        ("marshal", "loads", True),
        ("types", "CodeType", True),
        ("types", "FunctionType", True),
        ("pickle", "loads", True),
        ("builtins", "set", False),
        ("collections", "OrderedDict", False),
        ("numpy._core.multiarray", "_reconstruct", False),
        ("sklearn.pipeline", "Pipeline", False),
        ("torch._utils", "_rebuild_tensor_v2", False),
        ("types", "SimpleNamespace", False),
    ],
)
def test_unsafe_table(module: str, name: str, unsafe: bool) -> None:
    assert (unsafe_reason(module, name) is not None) is unsafe


def test_the_reason_for_a_python2_name_does_not_depend_on_the_hash_seed() -> None:
    script = (
        "from envbuild.scan.pickles import unsafe_reason; "
        "print(unsafe_reason('__builtin__', 'eval'))"
    )
    reasons = set()
    for seed in ("0", "1", "2", "3", "4", "5"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
        )
        reasons.add(done.stdout)
    assert len(reasons) == 1, reasons

"""The static scanner against hostile pickles that re-create known scanner bypasses
(tests/data/pickles/make_hostile.py writes them at test time), and against the real benign
pickles of the examples and test models (no false positives)."""

from __future__ import annotations

import importlib.util
import io
import pickle
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from envbuild.scan import scan_model
from envbuild.scan.pickles import scan_file, scan_pickle_bytes, unsafe_reason
from tests.helpers import DATA, EXAMPLES

UNSAFE = {"EB501", "EB503"}


def _generator() -> ModuleType:
    path = DATA / "pickles" / "make_hostile.py"
    spec = importlib.util.spec_from_file_location("make_hostile", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_hostile"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


make_hostile = _generator()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("hostile")
    return make_hostile.build(base / "cases", base / "markers")


def test_every_hostile_case_is_unsafe_and_none_runs(corpus) -> None:  # type: ignore[no-untyped-def]
    result = scan_model(corpus.root)
    by_file = {f.file: f for f in result.files}
    missed = []
    for case in corpus.cases:
        scanned = by_file.get(case.file)
        codes = {f.code for f in scanned.findings} if scanned else set()
        if not codes & UNSAFE:
            missed.append(f"{case.name} ({case.what}): {sorted(codes)}")
    assert missed == []
    assert len(corpus.cases) >= 120
    assert list(corpus.markers.iterdir()) == []  # the scan executed none of them


def test_unsafe_findings_name_the_file_and_offset(corpus) -> None:  # type: ignore[no-untyped-def]
    result = scan_model(corpus.root)
    scanned = next(f for f in result.files if f.file.startswith("memo_binput_overwrite/"))
    unsafe = [f for f in scanned.findings if f.code == "EB501"]
    assert [f.message.split(" at byte ")[0] for f in unsafe] == ["pickle references os.system"]
    assert unsafe[0].location.file == "memo_binput_overwrite/memo_binput_overwrite.pkl"
    # the zip cases point at the member
    zipped = next(f for f in result.files if f.file.startswith("zip_bad_crc/"))
    assert {f.location.field for f in zipped.findings if f.code == "EB501"} == {"archive/data.pkl"}


def test_control_the_live_payloads_really_run(corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Loading the live cases for real (in a child process) creates their markers, so the
    test above proves the scanner ran none of them, and the corpus is not inert."""
    fresh = make_hostile.build(tmp_path / "cases", tmp_path / "markers")
    live = [c for c in fresh.cases if c.live]
    subprocess.run(
        [sys.executable, "-c", make_hostile.LOADER, str(fresh.root)],
        input="\n".join(f"{c.load} {c.file}" for c in live),
        text=True,
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    # some payloads start a process and return (spawnv_passfds): give them a moment
    deadline = time.monotonic() + 10
    while True:
        made = {p.name for p in fresh.markers.iterdir()}
        missing = [c.name for c in live if c.name not in made]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert missing == []
    assert len(live) >= 60


# --------------------------------------------------------------------------------------
# benign: the real pickles stay clean


def _real_pickles() -> list[Path]:
    found = []
    for folder in (EXAMPLES, DATA / "models"):
        for path in sorted(folder.rglob("*")):
            if "_src" in path.parts or not path.is_file():
                continue
            if scan_file(path, path.name) is not None:
                found.append(path)
    return found


def test_the_real_benign_pickles_are_clean() -> None:
    paths = _real_pickles()
    assert len(paths) >= 14
    kinds = {scan_file(p, p.name).format for p in paths}  # type: ignore[union-attr]
    assert {"pickle", "joblib", "torch-zip", "skops"} <= kinds
    for path in paths:
        scanned = scan_file(path, path.name)
        assert scanned is not None
        assert [f.code for f in scanned.findings if f.code in UNSAFE | {"EB210"}] == [], path


@pytest.mark.parametrize(
    "folder",
    sorted(p.parent for p in EXAMPLES.glob("*/MLmodel"))
    + sorted(p.parent for p in (DATA / "models").glob("*/MLmodel")),
    ids=lambda p: p.name,
)
def test_real_model_folders_have_no_unsafe_finding(folder: Path) -> None:
    # the whole folder, so the content sniffing of json/yaml/txt/ubj files is covered too
    result = scan_model(folder)
    assert [(f.code, f.location.file) for f in result.findings if f.code in UNSAFE] == []


def test_the_committed_fixtures_are_clean_but_the_dangerous_ones() -> None:
    folder = DATA / "pickles"
    for path in sorted(folder.iterdir()):
        if path.suffix == ".py":
            continue
        scanned = scan_file(path, path.name)
        assert scanned is not None, path
        codes = {f.code for f in scanned.findings}
        assert bool(codes & UNSAFE) is path.name.startswith("dangerous_"), path


def test_cloudpickle_function_using_os_is_code_by_value_not_unsafe() -> None:
    # a notebook model whose method calls os.path.join: its globals hold subimport('os');
    # that is code by value (EB502), not an unsafe call at load time
    import cloudpickle

    def make():  # type: ignore[no-untyped-def]
        import os

        class Model:
            def predict(self, x: str) -> str:
                return os.path.join("a", x)

        def helper(x: str) -> str:
            return os.path.basename(x)

        return {"model": Model(), "helper": helper}

    data = cloudpickle.dumps(make(), protocol=4)
    result = scan_pickle_bytes(data, "python_model.pkl")
    assert "os" in {r.module for r in result.refs if r.kind.value == "subimport"}
    assert sorted({f.code for f in result.findings}) == ["EB502"]


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_other_formats_that_look_like_pickles_are_not_reported(tmp_path: Path) -> None:
    # a torch zip whose raw storage happens to start with a PROTO byte pair, a safetensors
    # header length of 0x280 (b"\x80\x02..."), requirements starting with "c" (GLOBAL)
    storage = b"\x80\x02" + struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    (tmp_path / "model.pt").write_bytes(
        _zip({"archive/data.pkl": pickle.dumps({"w": 1}, protocol=2), "archive/data/0": storage})
    )
    (tmp_path / "model.safetensors").write_bytes(
        struct.pack("<Q", 0x280) + b'{"w":{}}' + b" " * 0x278
    )
    (tmp_path / "requirements.txt").write_text("cloudpickle==3.1.1\nmlflow==3.1.0\n")
    (tmp_path / "notes.txt").write_text("cat\nfood\n")
    (tmp_path / "weights.bin").write_bytes(bytes(range(256)) * 4)
    result = scan_model(tmp_path)
    assert [(f.file, f.format, [x.code for x in f.findings]) for f in result.files] == [
        ("model.pt", "torch-zip", [])
    ]


def test_nested_torch_storage_bytes_are_scanned_not_flagged() -> None:
    # pickle.dumps(tensor) stores each storage as torch.save bytes behind
    # torch.storage._load_from_bytes: the bytes are scanned, a clean one is not a finding
    from_bytes = b"\x8c\rtorch.storage\x8c\x10_load_from_bytes\x93"

    def wrap(inner: bytes) -> bytes:
        return b"\x80\x04" + from_bytes + b"B" + struct.pack("<I", len(inner)) + inner + b"\x85R."

    clean = _zip({"archive/data.pkl": pickle.dumps([1.0], protocol=2)})
    assert wrap(clean)[:2] == b"\x80\x04"
    assert [f.code for f in scan_pickle_bytes(wrap(clean), "x.pkl").findings] == []
    hostile = _zip({"archive/data.pkl": b"\x80\x02cposix\nsystem\nX\x00\x00\x00\x00\x85R."})
    codes = [f.code for f in scan_pickle_bytes(wrap(hostile), "x.pkl").findings]
    assert codes == ["EB501"]


@pytest.mark.parametrize(
    ("module", "name", "unsafe"),
    [
        ("logging", "os.system", True),  # protocol 4 dotted name through a benign module
        ("__main__", "__builtins__.exec", True),
        ("builtins", "__dict__", True),
        ("asyncio.unix_events", "_UnixSubprocessTransport._start", True),
        ("torch.utils.bottleneck.__main__", "run_cprofile", True),
        ("unittest.__main__", "main", True),
        ("pathlib", "Path.unlink", True),
        ("uuid", "_get_command_stdout", True),
        ("logging", "FileHandler", True),
        ("_io", "FileIO", True),
        ("copyreg", "add_extension", True),
        ("copy_reg", "add_extension", True),
        ("__builtin__", "getattr", True),
        ("urllib", "urlopen", True),  # Python 2 name, mapped like the unpickler maps it
        ("commands", "getoutput", True),
        ("torch", "load", True),
        ("numpy", "load", True),
        ("pkgutil", "resolve_name", True),
        ("pydoc", "locate", True),
        ("inspect", "getattr_static", True),
        ("mymodule", "system", True),  # from os import system
        # benign names that share a module or a prefix with listed ones
        ("pathlib", "PosixPath", False),
        ("logging", "getLogger", False),
        ("uuid", "UUID", False),
        ("copyreg", "_reconstructor", False),
        ("copy_reg", "_reconstructor", False),
        ("builtins", "str.join", False),
        ("torch", "Size", False),
        ("torch._utils", "_rebuild_tensor_v2", False),
        ("torch.nn.modules.linear", "Linear", False),
        ("numpy", "dtype", False),
        ("numpy._core.multiarray", "_reconstruct", False),
        ("io", "BytesIO", False),
        ("collections", "OrderedDict", False),
        ("__main__", "Model", False),
        ("cloudpickle.cloudpickle", "_make_function", False),  # code by value: EB502
    ],
)
def test_unsafe_table_new_routes(module: str, name: str, unsafe: bool) -> None:
    assert (unsafe_reason(module, name) is not None) is unsafe

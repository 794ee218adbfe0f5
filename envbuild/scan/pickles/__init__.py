"""Pickle scanning by opcodes: which modules and callables a pickle would import, without
unpickling it.

A small symbolic pickle machine walks the opcodes (``pickletools.genops``) and keeps the
stack and memo as inert stand-ins (strings, numbers, tuples, dicts; ``_Global`` and
``_Call`` for what a real unpickler would import or call), enough to:

* resolve ``STACK_GLOBAL`` operands pushed by any string opcode or fetched from the memo
  (``MEMOIZE``/``PUT``/``BINPUT``/``GET``/``BINGET``, in any mix), and flag the ones a
  call computed (EB503);
* see calls of what another call returned (``attrgetter('system')(os)``, a by-value
  function called while loading) and ``BUILD`` on an imported object (EB503);
* see cloudpickle's ``subimport('module')`` calls, whose module is a string argument;
* step over the raw array bytes joblib writes after each ``NumpyArrayWrapper`` (their size
  follows from the wrapper's shape, dtype and alignment), and over the nested pickles of
  object arrays; then read the same bytes again as plain ``pickle.load`` would;
* continue after ``STOP`` when another pickle follows (legacy ``torch.save`` files, with
  or without a ``PROTO`` header);
* scan bytes a pickle hands to ``torch.storage._load_from_bytes`` as the nested file;
* read ``_sklearn_version`` from estimator states (a version hint).

Containers: joblib's zlib/gzip/bz2/xz/lzma (lz4 and zstd when their packages are present),
zip files (PyTorch, ``.pt2``, ``.npz``; read as leniently as PyTorch reads them), tar files,
numpy ``.npy`` object arrays and skops files (``schema.json``). Files are judged by content,
not by name.
"""

from __future__ import annotations

import bz2
import contextlib
import contextvars
import gzip
import io
import json
import lzma
import math
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from envbuild.findings import Finding, Location, Severity
from envbuild.scan import FileScan, Ref, RefKind, VersionHint
from envbuild.scan.pickles.unsafe import (
    _HINT,
    _PY2_MODULES,
    _UNSAFE,
    _listed,
    unsafe_reason,
)

# Finding codes of this module (gathered into the README table by the lead).
CODES: dict[str, str] = {
    "EB501": "a pickle references a callable that can run code or touch the system "
    "(os.system, subprocess.*, builtins.eval, ...): loading it is unsafe",
    "EB502": "a pickle carries Python code by value (cloudpickle functions or classes); "
    "loading it defines and may run that code",
    "EB503": "a pickle imports or calls something the scan cannot name (a computed import, "
    "a call of a computed callable, attributes set on an imported object, an EXT extension "
    "code, dangerous names in bytes that did not parse)",
    "EB210": "a pickle could not be parsed past some offset; the rest was scanned by byte patterns",
    "EB211": "a pickle or container could not be opened (unknown codec, lz4/zstandard not "
    "installed, corrupt data, too large or nested too deep): it cannot be verified, so "
    "commands that load the model refuse it",
}

MAX_DECOMPRESSED = 2 << 30  # 2 GiB: beyond that we stop rather than exhaust memory
MAX_ZIP_DEPTH = 3

PICKLE_SUFFIXES = frozenset(
    {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".sav", ".dill", ".cloudpickle"}
)


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


@dataclass(eq=False)
class _Bytes:
    data: bytes


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
    # a second reading of bytes that may not be pickle opcodes at all (what a plain
    # unpickler would see where joblib reads array bytes, or the data after a STOP): only
    # unsafe findings with named evidence count, refs are dropped
    quiet: bool = False
    failed: bool = False  # a parse error was recorded
    failed_at: int = 0
    skipped_at: int | None = None  # where the first joblib array bytes were stepped over
    unsafe_found: list[tuple[int, Finding]] = field(default_factory=list)  # EB501/EB503

    @property
    def where(self) -> str:
        return self.file + (f"[{self.member}]" if self.member else "")

    def loc(self) -> Location:
        return Location(file=self.file, field=self.member)

    def unsafe(self, code: str, offset: int, message: str, hint: str) -> None:
        finding = Finding(
            code=code,
            severity=Severity.UNSAFE,
            message=message,
            hint=hint,
            location=self.loc(),
        )
        self.findings.append(finding)
        self.unsafe_found.append((offset, finding))

    def take_unsafe(self, other: _Out, since: int = 0) -> None:
        """Adopt the unsafe findings of a second reading (from offset ``since`` on)."""
        known = {f.message for f in self.findings}
        for offset, finding in other.unsafe_found:
            if offset >= since and finding.message not in known:
                known.add(finding.message)
                self.findings.append(finding)
                self.unsafe_found.append((offset, finding))

    def ref(self, module: str, name: str | None, kind: RefKind, offset: int) -> None:
        reason = unsafe_reason(module, name)
        if kind is RefKind.SUBIMPORT and reason is not None and name is None:
            # a module object alone runs nothing: see _reduce for when it is passed on
            reason = None
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
        if reason is not None:
            what = f"{module}.{name}" if name else module
            self.unsafe(
                "EB501",
                offset,
                f"pickle references {what} at byte {offset}: {reason}",
                _HINT,
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
    # dtype state: (version, byteorder, subdescr, names, fields, elsize, alignment, flags);
    # numpy takes elsize from it only for flexible kinds (void, bytes, str)
    if kind in "VSUa" and len(state) >= 6 and isinstance(state[5], int) and state[5] > 0:
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


def _walk(stream: IO[bytes], out: _Out, size: int, *, arrays: bool = True) -> None:
    """Walk one pickle from the stream's position to its STOP. With ``arrays``, the raw
    bytes joblib writes after each NumpyArrayWrapper are stepped over, as joblib does."""
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
                    stack.append(_reduce(out, g, args, pos))
            elif name == "STACK_GLOBAL":
                attr_v = pop()
                module_v = pop()
                if isinstance(module_v, str) and isinstance(attr_v, str):
                    out.ref(module_v, attr_v, RefKind.STACK_GLOBAL, pos)
                    stack.append(_Global(module=module_v, name=attr_v, offset=pos))
                else:
                    if not out.quiet or _rooted(module_v) or _rooted(attr_v):
                        _computed(out, pos, "STACK_GLOBAL")
                    stack.append(_UNKNOWN)
            elif name in ("EXT1", "EXT2", "EXT4"):
                if not out.quiet:
                    _computed(out, pos, name)
                stack.append(_UNKNOWN)
            elif name == "REDUCE":
                args = pop()
                func = pop()
                stack.append(_reduce(out, func, args, pos))
            elif name == "OBJ":
                items = pop_mark()
                func = items[0] if items else _UNKNOWN
                stack.append(_reduce(out, func, tuple(items[1:]), pos))
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
                if isinstance(obj, _Global):
                    # setattr on a function or module the pickle imported: later dotted
                    # names then resolve to whatever it stored (os, __builtins__, ...)
                    out.unsafe(
                        "EB503",
                        pos,
                        f"pickle sets attributes of {obj.module}.{obj.name} (BUILD at byte "
                        f"{pos}); names looked up through it cannot be known statically",
                        _HINT,
                    )
                elif isinstance(obj, _Call):
                    obj.state = state
                    _look_at_state(out, state, pos)
                    if arrays and _is_wrapper(obj):
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
    **{n: _push(_Bytes) for n in ("BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8")},
    "NEXT_BUFFER": _push(lambda a: _UNKNOWN),
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
    """A call (REDUCE, OBJ, INST): what it returns, and whether it reveals code running."""
    first = args[0] if isinstance(args, tuple) and args else None
    if isinstance(func, _Global) and func.module.split(".")[0] in ("cloudpickle", "srsly"):
        if func.name in _SUBIMPORT and isinstance(first, str):
            out.ref(first, None, RefKind.SUBIMPORT, pos)
        elif out.by_value_code is None and (
            (func.name == "_builtin_type" and first in ("CodeType", "FunctionType"))
            or func.name in _BY_VALUE
        ):
            out.by_value_code = pos
    if (
        isinstance(func, _Global)
        and (func.module, func.name)
        in (
            ("importlib", "import_module"),
            ("builtins", "__import__"),
            ("dill._dill", "_import_module"),
        )
        and isinstance(first, str)
    ):
        out.ref(first, None, RefKind.SUBIMPORT, pos)
    if isinstance(func, _Global) and (func.module, func.name) in _NESTED_LOADS:
        if isinstance(first, _Bytes):
            _scan_nested(out, first.data, pos)
        else:
            out.unsafe(
                "EB503",
                pos,
                f"pickle unpickles bytes it does not carry literally ({func.module}."
                f"{func.name} at byte {pos}); they cannot be scanned",
                _HINT,
            )
    elif isinstance(func, _Call) and _rooted(func) and not _builds_code(func):
        # calling what another call returned: attrgetter(...)(obj), a by-value function,
        # itemgetter('exec')(namespace), ...: the callable has no name to check
        root = _root(func)
        out.unsafe(
            "EB503",
            pos,
            f"pickle calls a callable computed at load time (from {root.module}.{root.name} "
            f"at byte {root.offset}) at byte {pos}; the callable cannot be named statically",
            _HINT,
        )
    own = isinstance(func, _Global) and func.module.split(".")[0] in _PICKLERS
    for value in args if isinstance(args, tuple) and not own else ():
        # (cloudpickle's own helpers, e.g. _make_cell for a closure over a module, are not
        # a use of the module: only its code, flagged as by value, is)
        module = _module_object(value)
        if module is not None:
            reason = unsafe_reason(module, None)
            if reason is not None:
                out.unsafe(
                    "EB501",
                    pos,
                    f"pickle passes the {module} module (imported at byte {value.offset}) "
                    f"to a call at byte {pos}: {reason}",
                    _HINT,
                )
    return _Call(func=func, args=args, offset=pos)


_PICKLERS = frozenset({"cloudpickle", "srsly", "dill"})

# calls that unpickle bytes given in the pickle itself: scanned, not flagged
_NESTED_LOADS = frozenset({("torch.storage", "_load_from_bytes")})

# cloudpickle and dill build code objects through calls of returned types, and call
# by-value classes (instantiation, like NEWOBJ; their code is EB502's)
_CODE_BUILDERS = frozenset(
    (module, name)
    for module in ("cloudpickle", "cloudpickle.cloudpickle", "cloudpickle.cloudpickle_fast")
    for name in ("_builtin_type", "_make_skeleton_class", "_make_skeleton_enum")
) | {("dill._dill", "_load_type"), ("dill._dill", "_create_type")}


def _root(value: _Call) -> _Global:
    func: Any = value
    while isinstance(func, _Call):
        func = func.func
    assert isinstance(func, _Global)
    return func


def _rooted(value: Any) -> bool:
    """A call result whose chain of callables starts at a named global (so not a stand-in
    for bytes that are not opcodes)."""
    func = value
    while isinstance(func, _Call):
        func = func.func
    return isinstance(func, _Global) and value is not func


def _builds_code(value: _Call) -> bool:
    root = _root(value)
    return value.func is root and (root.module, root.name) in _CODE_BUILDERS


def _module_object(value: Any) -> str | None:
    """The module a subimport/import call returned, if ``value`` is one."""
    if not (isinstance(value, _Call) and isinstance(value.func, _Global)):
        return None
    func = value.func
    first = value.args[0] if isinstance(value.args, tuple) and value.args else None
    if not isinstance(first, str):
        return None
    if func.module.split(".")[0] in ("cloudpickle", "srsly") and func.name in _SUBIMPORT:
        return first
    if (func.module, func.name) == ("dill._dill", "_import_module"):
        return first
    return None


def _scan_nested(out: _Out, data: bytes, pos: int) -> None:
    with _deeper() as ok:
        if not ok:
            out.unsafe("EB503", pos, f"pickle nests pickles too deep to scan at byte {pos}", _HINT)
            return
        _scan_nested_bytes(out, data, pos)


def _scan_nested_bytes(out: _Out, data: bytes, pos: int) -> None:
    if data[:4] == b"PK\x03\x04":
        scans = _scan_zip(io.BytesIO(data), out.file, 1, f"{out.member or ''}@{pos}!")
    else:
        scans = [scan_pickle_bytes(data, out.file, member=f"{out.member or ''}@{pos}")]
    for scan in scans:
        out.refs.extend(scan.refs)
        for finding in scan.findings:
            out.findings.append(finding)
            if finding.code in ("EB501", "EB503"):
                out.unsafe_found.append((pos, finding))


def _computed(out: _Out, pos: int, opcode: str) -> None:
    what = (
        "an import whose module or name is computed"
        if opcode == "STACK_GLOBAL"
        else f"the copyreg extension registry ({opcode})"
    )
    out.unsafe(
        "EB503",
        pos,
        f"pickle uses {what} at byte {pos}; the callable cannot be named statically",
        "treat the file as untrusted; re-save it with a standard pickler",
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
    if out.skipped_at is None:
        out.skipped_at = stream.tell()
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
            if out.quiet and unsafe_reason(module, name) is None:
                continue
            out.ref(module, name, RefKind.HEURISTIC, match.start())
    _string_pairs(data, start, out)


_STRING_OP = re.compile(rb"\x8c|X|V|S'|S\"|U")
_IDENT_TEXT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?::[\w.]+)?\Z")


def _strings(data: bytes, start: int) -> Iterator[tuple[int, str]]:
    """Identifier-like string literals (any string opcode) in bytes that did not parse."""
    for match in _STRING_OP.finditer(data, start):
        at, op = match.start(), match.group()
        if op in (b"\x8c", b"U"):
            n = data[at + 1] if at + 1 < len(data) else 0
            raw = data[at + 2 : at + 2 + n]
        elif op == b"X":
            n = int.from_bytes(data[at + 1 : at + 5], "little")
            raw = data[at + 5 : at + 5 + n] if n < 256 else b""
        else:
            end = data.find(b"\n", at, at + 300)
            raw = data[at + len(op) : end] if end > 0 else b""
            if op != b"V":
                raw = raw[:-1] if raw[-1:] == op[1:] else b""
        if not raw or len(raw) > 255:
            continue
        text = raw.decode("latin-1")
        if _IDENT_TEXT.match(text):
            yield at, text


def _string_pairs(data: bytes, start: int, out: _Out) -> None:
    """Where parsing failed, a module name and one of its callables as two string
    literals (in that order, a few strings apart) are what a memo-built STACK_GLOBAL or
    an import call after the failure point would use."""
    strings = list(_strings(data, start))
    reported: set[tuple[str, str]] = set()
    for i, (at, module) in enumerate(strings):
        if _listed(module.split(":")[0], None) is None and module.split(".")[0] not in _UNSAFE:
            continue
        for _, name in strings[i + 1 : i + 5]:
            reason = unsafe_reason(module, name)
            if reason is None or (module, name) in reported:
                continue
            reported.add((module, name))
            out.unsafe(
                "EB503",
                at,
                f"pickle could not be parsed, and its strings name {module}.{name} "
                f"(from byte {at}): {reason}",
                _HINT,
            )


# --------------------------------------------------------------------------------------
# files


def _failed(out: _Out, exc: _ParseError, fallback: bytes | None) -> None:
    out.failed = True
    out.failed_at = exc.offset
    if not out.quiet:
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


def _scan_stream(stream: IO[bytes], size: int, out: _Out, fallback: bytes | None) -> None:
    """Walk every pickle in the stream; on a parse error, fall back to byte patterns."""
    start = stream.tell()
    try:
        _walk(stream, out, size)
    except _ParseError as exc:
        _failed(out, exc, fallback)
        return
    finally:
        end = stream.tell()
        if out.skipped_at is not None:
            _plain(stream, start, size, out)
            stream.seek(end)
    # what follows a STOP: legacy torch.save files hold more pickles, then raw storage bytes
    while stream.tell() < size:
        at = stream.tell()
        head = stream.read(2)
        stream.seek(at)
        if looks_like_pickle(head):
            nxt = _Out(file=out.file, member=out.member, quiet=out.quiet)
        else:  # no PROTO: a pickle all the same for a loader that calls load() again
            nxt = _Out(file=out.file, member=out.member, quiet=True)
        try:
            _walk(stream, nxt, size)
        except _ParseError as exc:
            if nxt.quiet:
                out.take_unsafe(nxt)
            else:
                _absorb(out, nxt)
                _failed(out, exc, fallback)
            return
        _absorb(out, nxt)
        if nxt.skipped_at is not None:
            end = stream.tell()
            _plain(stream, at, size, out)
            stream.seek(end)


def _absorb(out: _Out, other: _Out) -> None:
    out.refs.extend(other.refs)
    out.hints.extend(h for h in other.hints if h not in out.hints)
    out.take_unsafe(other)
    out.findings.extend(f for f in other.findings if f.code not in ("EB501", "EB503"))
    out.cloudpickle |= other.cloudpickle
    out.joblib |= other.joblib
    if out.by_value_code is None:
        out.by_value_code = other.by_value_code


def _plain(stream: IO[bytes], start: int, size: int, out: _Out) -> None:
    """Read the pickle again as plain ``pickle.load`` would, which does not skip joblib's
    array bytes: opcodes hidden there run for any loader but joblib's."""
    plain = _Out(file=out.file, member=out.member, quiet=True)
    stream.seek(start)
    with contextlib.suppress(_ParseError):
        _walk(stream, plain, size, arrays=False)
    out.take_unsafe(plain, since=out.skipped_at or 0)


def looks_like_pickle(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


_CODECS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
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
    elif codec == "zstd":
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            raise OSError("zstandard is not installed (pip install zstandard to scan it)") from None
        raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_DECOMPRESSED)
    elif codec == "7z":
        raise OSError("7z archives are not scanned; no model loader opens them unpacked")
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
    except (zipfile.BadZipFile, OSError, ValueError):
        return results
    with archive:
        names = archive.namelist()
        if "schema.json" in names and any(n.endswith(".npy") for n in names):
            results.append(_scan_skops(archive.read("schema.json"), file, prefix + "schema.json"))
            return results
        for info in archive.infolist():
            if info.is_dir():
                continue
            member = prefix + info.filename
            named = _pickle_named(info.filename)
            if not named and info.file_size > MAX_SNIFF_MEMBER:
                head = _member_head(archive, handle, info)
                if not (looks_like_pickle(head) or _codec(head) or head[:4] == b"PK\x03\x04"):
                    continue
            data = _read_member(archive, handle, info)
            if data is None:
                if named:
                    results.append(_unreadable(file, member, "zip member could not be read"))
                continue
            if data[:4] == b"PK\x03\x04":
                if depth < MAX_ZIP_DEPTH:
                    results.extend(_scan_zip(io.BytesIO(data), file, depth + 1, member + "!"))
                continue
            scanned = _scan_bytes(data, file, member, named=named, fmt="torch-zip")
            if scanned is not None:
                results.append(scanned)
    return results


MAX_SNIFF_MEMBER = 1 << 20  # members without a pickle name: read whole only if they look like one


def _member_head(archive: zipfile.ZipFile, handle: IO[bytes], info: zipfile.ZipInfo) -> bytes:
    try:
        with archive.open(info) as f:
            return f.read(8)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, ValueError, EOFError):
        data = _raw_member(handle, info, limit=64)
        return data[:8] if data else b""


def _read_member(
    archive: zipfile.ZipFile, handle: IO[bytes], info: zipfile.ZipInfo
) -> bytes | None:
    """A member's bytes as a lenient reader (PyTorch's) gets them: a wrong CRC, an
    "encrypted" flag on clear data, or a local header naming another file do not stop it."""
    if info.file_size > MAX_DECOMPRESSED:
        return None
    try:
        with archive.open(info) as f:
            data = f.read(MAX_DECOMPRESSED + 1)  # the declared size may lie (zip bombs)
        return data if len(data) <= MAX_DECOMPRESSED else None
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, ValueError, EOFError):
        return _raw_member(handle, info)


def _raw_member(handle: IO[bytes], info: zipfile.ZipInfo, limit: int | None = None) -> bytes | None:
    try:
        handle.seek(info.header_offset)
        local = handle.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        handle.seek(info.header_offset + 30 + name_len + extra_len)
        raw = handle.read(info.compress_size)
        if info.compress_type == zipfile.ZIP_STORED:
            return raw[:limit] if limit else raw
        if info.compress_type == zipfile.ZIP_DEFLATED:
            d = zlib.decompressobj(-15)
            return d.decompress(raw, limit or MAX_DECOMPRESSED)
        if info.compress_type == zipfile.ZIP_BZIP2:
            return bz2.BZ2Decompressor().decompress(raw, limit or MAX_DECOMPRESSED)
        if info.compress_type == zipfile.ZIP_LZMA:
            return _zip_lzma(raw, limit)
    except (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError, struct.error):
        return None
    return None


def _zip_lzma(raw: bytes, limit: int | None) -> bytes:
    # zip's lzma members: 2 version bytes, 2 bytes of properties size, the properties
    props_len = int.from_bytes(raw[2:4], "little")
    props = raw[4 : 4 + props_len]
    filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
    d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
    return d.decompress(raw[4 + props_len :], limit or MAX_DECOMPRESSED)


def _unreadable(file: str, member: str | None, why: str) -> FileScan:
    return FileScan(
        file=file,
        format="unreadable",
        findings=(
            Finding(
                code="EB211",
                severity=Severity.WARNING,
                message=f"{file}" + (f"[{member}]" if member else "") + f": {why}",
                hint="its requirements and safety are unknown: install what opens it (lz4, "
                "zstandard) so the scan can read it, or pass --trust-model",
                location=Location(file=file, field=member),
            ),
        ),
    )


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


def _pickle_named(name: str) -> bool:
    """A pickle by its name, also under a compression suffix (model.pkl.gz)."""
    suffixes = [s.lower() for s in Path(name).suffixes[-2:]]
    return bool(suffixes) and (
        suffixes[-1] in PICKLE_SUFFIXES
        or (
            len(suffixes) == 2
            and suffixes[-1] in _COMPRESSED_SUFFIXES
            and suffixes[0] in PICKLE_SUFFIXES
        )
    )


_COMPRESSED_SUFFIXES = frozenset(
    {".gz", ".bz2", ".xz", ".lzma", ".z", ".zst", ".lz4", ".zip", ".tar"}
)
_NPY_MAGIC = b"\x93NUMPY"
_EXPLICIT_P0 = (b"(", b"c", b"]", b"}")


def scan_file(path: Path, rel: str, *, sniff: bool = False) -> FileScan | None:
    """Scan one file if it is a pickle, a compressed pickle (joblib), a torch/zip archive
    holding pickles, a tar, a numpy object array or a skops file; None for anything else.

    Any file is sniffed by its content, whatever its name. With ``sniff`` (names that are
    not model files: text, JSON, other model formats) or where the content does not start
    like a pickle, the result is kept only if it shows an unsafe finding or a pickle that
    parsed cleanly, so other formats do not produce parse warnings."""
    try:
        handle = path.open("rb")
        size = path.stat().st_size
    except OSError:
        return None
    with handle:
        head = handle.read(512)
        handle.seek(0)
        if head.startswith(b"PK\x03\x04"):
            scans = _scan_zip(handle, rel, 0)
            return _merge(rel, scans) if scans else None
        named = _pickle_named(path.name) and not sniff
        if looks_like_pickle(head) and not sniff:
            out = _Out(file=rel, member=None)
            fallback = handle.read() if size <= MAX_FALLBACK else None
            handle.seek(0)
            _scan_stream(handle, size, out, fallback)
            return _finish(out, "pickle")
        if head.startswith(_NPY_MAGIC) or _is_tar(head) or _codec(head[:16]) is not None:
            if size > MAX_DECOMPRESSED:
                return None
            return _scan_bytes(handle.read(), rel, None, named=named, fmt="pickle")
        full = named and head[:1] in _EXPLICIT_P0
        return _sniff(handle, size, rel, None, full=full, fmt="pickle")


MAX_FALLBACK = 64 << 20  # byte-pattern fallback only for files up to this size


def _sniff(
    stream: IO[bytes], size: int, file: str, member: str | None, *, full: bool, fmt: str
) -> FileScan | None:
    """Parse content that may or may not be a pickle. Unless ``full``, keep the result only
    if it is unsafe or a clean pickle; the byte patterns run only where parsing got past
    the first opcodes (other formats fail at once)."""
    start = stream.tell()
    out = _Out(file=file, member=member, quiet=not full)
    fallback = None
    if full and size <= MAX_FALLBACK:
        fallback = stream.read()
        stream.seek(start)
    _scan_stream(stream, size, out, fallback)
    if not full and out.failed_at > 16 and size <= MAX_FALLBACK:
        stream.seek(start)
        _heuristic(stream.read(), 0, out)
    scanned = _finish(out, fmt)
    if full:
        return scanned
    if out.unsafe_found or (not out.failed and out.refs and all(_ident(r) for r in out.refs)):
        return scanned
    return None


# containers inside containers (gzip in zip in tar, torch bytes in a pickle, ...): a quine
# archive must not recurse forever
_NESTING: contextvars.ContextVar[int] = contextvars.ContextVar("envbuild_nesting", default=0)
MAX_NESTING = 8


@contextlib.contextmanager
def _deeper() -> Iterator[bool]:
    token = _NESTING.set(_NESTING.get() + 1)
    try:
        yield _NESTING.get() <= MAX_NESTING
    finally:
        _NESTING.reset(token)


def _scan_bytes(
    data: bytes, file: str, member: str | None, *, named: bool, fmt: str
) -> FileScan | None:
    """Bytes of any kind, as scan_file judges a file's content."""
    with _deeper() as ok:
        if not ok:
            return _unreadable(file, member, "containers nested too deep") if named else None
        return _scan_content(data, file, member, named=named, fmt=fmt)


def _scan_content(
    data: bytes, file: str, member: str | None, *, named: bool, fmt: str
) -> FileScan | None:
    if data[:4] == b"PK\x03\x04":
        scans = _scan_zip(io.BytesIO(data), file, 1, (member + "!") if member else "")
        return _merge(file, scans) if scans else None
    if data.startswith(_NPY_MAGIC):
        return _scan_npy(data, file, member)
    if _is_tar(data):
        scans = _scan_tar(data, file, member)
        return _merge(file, scans) if scans else None
    codec = _codec(data[:16])
    if codec is not None:
        try:
            raw = _decompress(data, codec)
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
            if not named:
                return None  # some other compressed file, not ours to judge
            return FileScan(
                file=file,
                format=f"{codec}?",
                findings=(
                    Finding(
                        code="EB211",
                        severity=Severity.WARNING,
                        message=f"{codec}-compressed file could not be scanned: {exc}",
                        hint="its requirements and safety are unknown: re-save it, or "
                        "pass --trust-model",
                        location=Location(file=file, field=member),
                    ),
                ),
            )
        scanned = _scan_bytes(raw, file, member, named=named, fmt=fmt)
        if scanned is None:
            return None
        return FileScan(
            file=file,
            format=f"{scanned.format}+{codec}",
            refs=scanned.refs,
            hints=scanned.hints,
            findings=scanned.findings,
        )
    full = named and (looks_like_pickle(data[:2]) or data[:1] in _EXPLICIT_P0)
    return _sniff(io.BytesIO(data), len(data), file, member, full=full, fmt=fmt)


def _ident(ref: Ref) -> bool:
    return bool(_IDENT_TEXT.match(ref.module)) and (
        ref.name is None or bool(_IDENT_TEXT.match(ref.name))
    )


def _scan_npy(data: bytes, file: str, member: str | None) -> FileScan | None:
    """A .npy file: an object array's data is a pickle (numpy.load(allow_pickle=True))."""
    import ast

    major = data[6] if len(data) > 6 else 0
    if major == 1:
        hlen, start = int.from_bytes(data[8:10], "little"), 10
    else:
        hlen, start = int.from_bytes(data[8:12], "little"), 12
    body = data[start + hlen :]
    try:
        header = ast.literal_eval(data[start : start + hlen].decode("latin-1"))
        descr = header.get("descr") if isinstance(header, dict) else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        descr = None
    if isinstance(descr, str) and not _OBJECT_DESCR.match(descr):
        return None  # raw array data
    if isinstance(descr, str):
        out = _Out(file=file, member=member)
        _scan_stream(io.BytesIO(body), len(body), out, body)
        return _finish(out, "npy-object")
    # a structured or unreadable dtype may hold objects: keep what looks unsafe
    return _sniff(io.BytesIO(body), len(body), file, member, full=False, fmt="npy")


_OBJECT_DESCR = re.compile(r"^[|<>=]?O\d*$|^object$")


def _is_tar(data: bytes) -> bool:
    return len(data) > 262 and data[257:262] == b"ustar"


def _scan_tar(data: bytes, file: str, member: str | None) -> list[FileScan]:
    """A tar (legacy torch.save, pandas' .tar pickles): every regular member by content."""
    results: list[FileScan] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar.getmembers():
                if not info.isfile():
                    continue
                f = tar.extractfile(info)
                if f is None:
                    continue
                content = f.read(MAX_DECOMPRESSED)
                name = (member + "!" if member else "") + info.name
                scanned = _scan_bytes(content, file, name, named=True, fmt="tar")
                if scanned is not None:
                    results.append(scanned)
    except (tarfile.TarError, OSError, ValueError, EOFError):
        return results
    return results


def _merge(rel: str, scans: list[FileScan]) -> FileScan:
    fmt = scans[0].format if len({s.format for s in scans}) == 1 else "zip"
    return FileScan(
        file=rel,
        format=fmt,
        refs=tuple(r for s in scans for r in s.refs),
        hints=tuple(h for s in scans for h in s.hints),
        findings=tuple(f for s in scans for f in s.findings),
    )

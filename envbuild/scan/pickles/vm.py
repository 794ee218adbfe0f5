"""The symbolic pickle machine: the opcode walk over a stream of pickles and the findings
it raises (EB501, EB502, EB503, EB210). It is long because that is one concern: the
opcodes, the stand-ins they build and the calls those reveal belong together.

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
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from envbuild.findings import Code, Finding, Location
from envbuild.scan import FileScan, Ref, RefKind, VersionHint
from envbuild.scan.pickles.heuristic import _heuristic
from envbuild.scan.pickles.unsafe import (
    _HINT,
    _PY2_MODULES,
    EB210,
    EB501,
    EB502,
    EB503,
    unsafe_reason,
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

    def unsafe(self, code: Code, offset: int, message: str, hint: str) -> None:
        finding = code.at(self.loc(), message, hint=hint)
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
                EB501,
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
                        EB503,
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
            # bytes that hold a file of their own, scanned as containers are (which build
            # on this module: hence the import here)
            from envbuild.scan.pickles.containers import _scan_nested

            _scan_nested(out, first.data, pos)
        else:
            out.unsafe(
                EB503,
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
            EB503,
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
                    EB501,
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


def _computed(out: _Out, pos: int, opcode: str) -> None:
    what = (
        "an import whose module or name is computed"
        if opcode == "STACK_GLOBAL"
        else f"the copyreg extension registry ({opcode})"
    )
    out.unsafe(
        EB503,
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


def _failed(out: _Out, exc: _ParseError, fallback: bytes | None) -> None:
    out.failed = True
    out.failed_at = exc.offset
    if not out.quiet:
        out.findings.append(
            EB210.at(
                out.loc(),
                f"could not parse the pickle past byte {exc.offset} ({exc.reason}); "
                "the rest was scanned by byte patterns",
                hint="the requirements from this file may be incomplete; check them "
                "with `envbuild infer --trace`",
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


def _finish(out: _Out, fmt: str) -> FileScan:
    if out.by_value_code is not None:
        out.findings.append(
            EB502.at(
                out.loc(),
                f"pickle carries Python code by value (cloudpickle, first at byte "
                f"{out.by_value_code}); loading it defines that code",
                hint="review the code that was pickled, or ship it as a module with "
                "code_paths so it is pickled by reference",
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

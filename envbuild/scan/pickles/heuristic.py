"""Byte patterns where parsing fails: the globals (``GLOBAL`` text, ``STACK_GLOBAL`` of two
short strings) and the pairs of string literals a memo-built import would use, found in
the bytes of a pickle the symbolic machine could not parse."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from envbuild.scan import RefKind
from envbuild.scan.pickles.unsafe import _HINT, _UNSAFE, EB503, _listed, unsafe_reason

if TYPE_CHECKING:  # the machine calls in here: its collector is a type only
    from envbuild.scan.pickles.vm import _Out

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
                EB503,
                at,
                f"pickle could not be parsed, and its strings name {module}.{name} "
                f"(from byte {at}): {reason}",
                _HINT,
            )

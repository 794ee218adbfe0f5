"""YAML reading that remembers where each value came from.

PyYAML's composer gives nodes with marks; we construct the data with the safe constructor
and walk the node tree beside it, recording the 1-based line of every mapping value and
sequence item under its field path (``dependencies[3].pip[1]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from envbuild.errors import InputError
from envbuild.findings import Location

FieldPath = tuple[str | int, ...]


def format_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


@dataclass(frozen=True)
class YamlDoc:
    file: str
    data: Any
    lines: dict[FieldPath, int] = field(default_factory=dict)
    scalars: dict[FieldPath, str] = field(default_factory=dict)  # scalar text as written

    def text(self, path: Sequence[str | int]) -> str | None:
        """A scalar as written: ``python: 3.10`` is the float 3.1 to YAML, "3.10" here."""
        return self.scalars.get(tuple(path))

    def line(self, path: Sequence[str | int]) -> int | None:
        return self.lines.get(tuple(path))

    def at(self, path: Sequence[str | int]) -> Location:
        return Location(file=self.file, field=format_path(path) or None, line=self.line(path))


def _record(
    node: yaml.Node,
    path: FieldPath,
    lines: dict[FieldPath, int],
    scalars: dict[FieldPath, str],
    depth: int,
) -> None:
    if depth > 200:
        return
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode):
        scalars.setdefault(path, str(node.value))
    elif isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                _record(value_node, (*path, str(key_node.value)), lines, scalars, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record(item, (*path, index), lines, scalars, depth + 1)


def load_yaml(text: str | bytes, *, file: str) -> YamlDoc:
    """Parse one YAML document safely; raise InputError naming the file and line."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"not UTF-8 text (byte {exc.start})",
                hint="save the file as UTF-8 YAML",
                location=Location(file=file),
                code="EB101",
            ) from None
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = (exc.problem or exc.context or "invalid YAML").strip()
        raise InputError(
            f"not valid YAML: {what}",
            hint="fix the YAML syntax at that line",
            location=Location(file=file, line=mark.line + 1 if mark else None),
            code="EB101",
        ) from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        raise InputError(
            f"not valid YAML: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            hint="fix the YAML syntax",
            location=Location(file=file),
            code="EB101",
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    lines: dict[FieldPath, int] = {}
    scalars: dict[FieldPath, str] = {}
    if node is not None:
        _record(node, (), lines, scalars, 0)
    return YamlDoc(file=file, data=data, lines=lines, scalars=scalars)

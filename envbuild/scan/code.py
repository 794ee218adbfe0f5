"""Import scanning of the Python code a model carries (``code/``, ``code_paths``, the
models-from-code file), by AST: nothing is imported or run.

Finds ``import a.b``, ``from a.b import c`` (recorded as ``a.b.c``, so a namespace package's
submodule is resolved to the distribution that provides it), imports inside functions and
classes, relative imports (local, never requirements), imports guarded by
``try/except ImportError`` or ``if TYPE_CHECKING`` (optional), and
``importlib.import_module("x")`` / ``__import__("x")`` with a literal name.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from envbuild._paths import inside
from envbuild.errors import InputError
from envbuild.findings import Code, Location, Severity, table
from envbuild.scan import FileScan, Ref, RefKind, iter_files

EB212 = Code(
    "EB212",
    Severity.WARNING,
    "a Python file the model carries could not be parsed; its imports are unknown",
)
CODES: dict[str, str] = table(EB212)

_GUARDS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names: list[ast.expr] = (
        list(handler.type.elts) if isinstance(handler.type, ast.Tuple) else [handler.type]
    )
    for n in names:
        if isinstance(n, ast.Name) and n.id in _GUARDS:
            return True
        if isinstance(n, ast.Attribute) and n.attr in _GUARDS:
            return True
    return False


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@dataclass(frozen=True)
class _Import:
    module: str
    line: int
    optional: bool
    kind: RefKind
    relative: bool = False


class _Visitor(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[_Import] = []
        self._optional = 0

    def _guarded(self, nodes: Iterable[ast.stmt]) -> None:
        self._optional += 1
        for node in nodes:
            self.visit(node)
        self._optional -= 1

    def visit_Try(self, node: ast.Try) -> None:
        if any(_catches_import_error(h) for h in node.handlers):
            self._guarded(node.body)
        else:
            for stmt in node.body:
                self.visit(stmt)
        for h in node.handlers:
            self.visit(h)
        for stmt in (*node.orelse, *node.finalbody):
            self.visit(stmt)

    if sys.version_info >= (3, 11):  # try/except* (ast.TryStar) is 3.11 syntax

        def visit_TryStar(self, node: ast.TryStar) -> None:
            self.visit_Try(node)  # type: ignore[arg-type]  # same fields as Try

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self._guarded(node.body)
            for stmt in node.orelse:
                self.visit(stmt)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append(_Import(alias.name, node.lineno, self._optional > 0, RefKind.IMPORT))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.found.append(
                _Import(node.module or "", node.lineno, True, RefKind.IMPORT, relative=True)
            )
            return
        if not node.module:
            return
        for alias in node.names:
            # `from google.cloud import storage` may import the submodule google.cloud.storage;
            # record the longest name, the environment map resolves it to the deepest module
            # some distribution provides.
            name = node.module if alias.name == "*" else f"{node.module}.{alias.name}"
            self.found.append(_Import(name, node.lineno, self._optional > 0, RefKind.IMPORT))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        dynamic = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
            isinstance(func, ast.Name) and func.id in ("import_module", "__import__")
        )
        if (
            dynamic
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            self.found.append(
                _Import(node.args[0].value, node.lineno, self._optional > 0, RefKind.DYNAMIC_IMPORT)
            )
        self.generic_visit(node)


def imports_in(source: str, filename: str = "<model code>") -> list[_Import]:
    tree = ast.parse(source, filename=filename)
    visitor = _Visitor()
    visitor.visit(tree)
    return visitor.found


def _local_modules(folder: Path) -> set[str]:
    """Top-level modules a code folder provides when it is put on sys.path (as MLflow does
    with ``code/``): ``x.py``, packages ``x/``, extension modules."""
    out: set[str] = set()
    if not folder.is_dir():
        return out
    for entry in folder.iterdir():
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.is_dir():
            out.add(entry.name)
        elif entry.suffix in (".py", ".pyc") and "." not in entry.stem:
            out.add(entry.stem)
        elif entry.suffix in (".so", ".pyd"):
            out.add(entry.name.split(".")[0])
    return out


def _py_files(root: Path, rel: str) -> Iterator[tuple[str, Path]]:
    path = root / rel
    if path.is_file():
        if path.suffix == ".py":
            yield rel, path
        return
    prefix = rel.rstrip("/") + "/"
    for sub, p in iter_files(path):
        if p.suffix == ".py":
            yield prefix + sub, p


def scan_code(
    root: Path, *, code_dirs: Iterable[str] = (), code_files: Iterable[str] = ()
) -> list[FileScan]:
    """Scan every ``.py`` file under ``code_dirs`` and the ``code_files`` (paths relative
    to ``root``; anything leaving the folder is ignored, the reader reports it)."""
    local: set[str] = set()
    targets: dict[str, Path] = {}
    for rel in code_dirs:
        try:
            folder = inside(root, rel, location=Location(file=rel))
        except InputError:
            continue
        local |= _local_modules(folder)
        for sub in folder.iterdir() if folder.is_dir() else ():
            # code_paths entries copied as folders: code/<pkg>/... and their own siblings
            if (
                sub.is_dir()
                and sub.name != "__pycache__"
                and not sub.name.startswith(".")
                and not (sub / "__init__.py").exists()
            ):
                local |= _local_modules(sub)
        targets.update(dict(_py_files(root, rel)))
    for rel in code_files:
        try:
            path = inside(root, rel, location=Location(file=rel))
        except InputError:
            continue
        if path.is_file() and path.suffix == ".py":
            targets[rel] = path
            # a models-from-code file may import the .py files beside it
            local |= {p.stem for p in path.parent.glob("*.py")}
    scans: list[FileScan] = []
    for rel in sorted(targets):
        path = targets[rel]
        try:
            source = path.read_text(encoding="utf-8")
            found = imports_in(source, rel)
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError) as exc:
            line = getattr(exc, "lineno", None)
            scans.append(
                FileScan(
                    file=rel,
                    format="python",
                    findings=(
                        EB212.at(
                            Location(file=rel, line=line),
                            f"cannot parse {rel}: {type(exc).__name__}: "
                            f"{getattr(exc, 'msg', None) or exc}",
                            hint="fix the file; its imports were not scanned",
                        ),
                    ),
                )
            )
            continue
        refs = tuple(
            Ref(
                module=imp.module,
                name=None,
                file=rel,
                line=imp.line,
                kind=imp.kind,
                optional=imp.optional,
            )
            for imp in found
            if not imp.relative and imp.module
        )
        scans.append(
            FileScan(file=rel, format="python", refs=refs, local_modules=tuple(sorted(local)))
        )
    return scans

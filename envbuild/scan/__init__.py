"""Static scans of what a model folder carries: pickles (plain, joblib, cloudpickle, PyTorch
zip, skops) by their opcodes, and Python code by its AST. Nothing here unpickles, imports or
executes anything from the model.

``scan_model(folder)`` walks the folder and returns every module reference found, each
with the file, byte offset (pickles) or line (code) and the kind of reference.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild._compat import StrEnum
from envbuild.findings import Finding


class RefKind(StrEnum):
    GLOBAL = "global"  # GLOBAL opcode (protocols 0-3): "module name"
    STACK_GLOBAL = "stack_global"  # STACK_GLOBAL (protocol 4+): module and name pushed
    INST = "inst"  # INST opcode (protocol 0)
    SUBIMPORT = "subimport"  # cloudpickle subimport('module') / dynamic_subimport
    SKOPS = "skops"  # a type or function named in a .skops schema.json
    HEURISTIC = "heuristic"  # found by byte patterns where opcode parsing failed
    IMPORT = "import"  # `import x` / `from x import y` in Python code
    DYNAMIC_IMPORT = "dynamic_import"  # importlib.import_module("x") / __import__("x")


PICKLE_KINDS = frozenset(
    {RefKind.GLOBAL, RefKind.STACK_GLOBAL, RefKind.INST, RefKind.SUBIMPORT, RefKind.HEURISTIC}
)


@dataclass(frozen=True, kw_only=True)
class Ref:
    """One module reference. ``file`` is relative to the model folder; ``member`` names the
    archive member (``model/data.pkl`` in a torch zip) or ``None``; ``offset`` is the byte
    offset of the opcode in the (decompressed) pickle stream; ``line`` is for code."""

    module: str
    name: str | None
    file: str
    kind: RefKind
    offset: int | None = None
    line: int | None = None
    member: str | None = None
    optional: bool = False  # code: inside try/except ImportError or `if TYPE_CHECKING`

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}" if self.name else self.module

    @property
    def where(self) -> str:
        place = self.file + (f"[{self.member}]" if self.member else "")
        if self.line is not None:
            return f"{place}:{self.line}"
        if self.offset is not None:
            return f"{place}@{self.offset}"
        return place

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "name": self.name,
            "file": self.file,
            "member": self.member,
            "offset": self.offset,
            "line": self.line,
            "kind": self.kind.value,
            "optional": self.optional,
        }


@dataclass(frozen=True, kw_only=True)
class VersionHint:
    """A version the artifact itself records for the library that produced it, e.g. the
    ``_sklearn_version`` in an estimator's pickled state."""

    distribution: str
    version: str
    file: str
    member: str | None
    offset: int | None
    source: str

    @property
    def where(self) -> str:
        place = self.file + (f"[{self.member}]" if self.member else "")
        return f"{place}@{self.offset}" if self.offset is not None else place


@dataclass(frozen=True, kw_only=True)
class FileScan:
    file: str
    format: str  # pickle, joblib, joblib+zlib, torch-zip, skops, python, ...
    refs: tuple[Ref, ...] = ()
    hints: tuple[VersionHint, ...] = ()
    findings: tuple[Finding, ...] = ()
    local_modules: tuple[str, ...] = ()  # code: top-level modules the model ships itself

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "format": self.format,
            "refs": len(self.refs),
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(frozen=True, kw_only=True)
class ModelScan:
    files: tuple[FileScan, ...]

    @property
    def refs(self) -> tuple[Ref, ...]:
        return tuple(r for f in self.files for r in f.refs)

    @property
    def hints(self) -> tuple[VersionHint, ...]:
        return tuple(h for f in self.files for h in f.hints)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(x for f in self.files for x in f.findings)

    @property
    def local_modules(self) -> frozenset[str]:
        return frozenset(m for f in self.files for m in f.local_modules)


# Files that are not pickles by name: MLflow metadata and environment files, text, code
# (scanned by AST instead), and well-known non-pickle model formats.
_SKIP_SUFFIXES = frozenset(
    {
        ".yaml",
        ".yml",
        ".json",
        ".txt",
        ".md",
        ".py",
        ".pyc",
        ".csv",
        ".parquet",
        ".ubj",
        ".onnx",
        ".safetensors",
        ".h5",
        ".keras",
        ".pb",
        ".cfg",
        ".toml",
        ".ini",
    }
)


_CODE_SUFFIXES = frozenset({".py", ".pyc"})


def iter_files(root: Path) -> Iterable[tuple[str, Path]]:
    """Regular files under ``root`` (sorted, relative POSIX paths); symbolic links that
    lead outside the folder are not followed."""
    base = root.resolve()
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                real = path.resolve()
            except OSError:
                continue
            if real != base and base not in real.parents:
                continue
            if real.is_file():
                yield path.relative_to(base).as_posix(), path


def scan_model(
    root: Path, *, code_dirs: Iterable[str] = (), code_files: Iterable[str] = ()
) -> ModelScan:
    """Scan every artifact under ``root`` (pickles by content sniffing) and the given code
    folders/files (relative to ``root``) by AST."""
    from envbuild.scan.code import scan_code
    from envbuild.scan.pickles import scan_file

    files: list[FileScan] = []
    for rel, path in iter_files(root):
        suffix = path.suffix.lower()
        if rel == "MLmodel" or suffix in _CODE_SUFFIXES:
            continue
        # other formats by name are still sniffed: a gzip'd pickle called notes.txt loads
        # as well as model.pkl.gz; they only count if they show a pickle
        scanned = scan_file(path, rel, sniff=suffix in _SKIP_SUFFIXES)
        if scanned is not None:
            files.append(scanned)
    files.extend(scan_code(root, code_dirs=code_dirs, code_files=code_files))
    return ModelScan(files=tuple(files))

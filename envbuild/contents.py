"""Which files of a model folder go into an image, and why the others stay out.

The rules, in order: envbuild's defaults (``.git``, ``__pycache__/``, ``.ipynb_checkpoints/``,
``.DS_Store``, the ``.envbuildignore`` file itself), the folder's ``.envbuildignore`` and
``--exclude`` patterns (gitignore syntax), then what the MLmodel does not use: notebooks and
``.github/`` are left out, Git LFS pointers are never copied, and secret-looking files are
refused unless allowed by name. Everything else is copied; what nothing in the MLmodel
references is listed with its size so repository-root folders are visible.

Reading only: nothing here imports or unpickles, and no secret value is ever returned.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pathspec

from envbuild.errors import FindingsError
from envbuild.findings import Code, Finding, Location, Severity, table

if TYPE_CHECKING:
    from envbuild.read import ModelFolder

EB107 = Code(
    "EB107",
    Severity.ERROR,
    "a file the model needs is a Git LFS pointer, not the file (run git lfs pull)",
    also=(Severity.WARNING,),
)
EB410 = Code(
    "EB410",
    Severity.INFO,
    "model files: unused ones left out (notebooks, .github/) or large, or a used one excluded",
    also=(Severity.WARNING,),
)
EB504 = Code(
    "EB504",
    Severity.ERROR,
    "a secret-looking file (credentials, keys, tokens) is in the model folder",
    also=(Severity.INFO,),
)
CODES: dict[str, str] = table(EB107, EB410, EB504)

IGNORE_FILE = ".envbuildignore"
DEFAULT_EXCLUDES = (".git", "__pycache__/", ".ipynb_checkpoints/", ".DS_Store", "/" + IGNORE_FILE)
_PRUNED_DIRS = frozenset({".git", "__pycache__", ".ipynb_checkpoints"})
# Unreferenced files of these kinds are never needed to serve: left out unless allowed.
UNUSED_EXCLUDES = ("*.ipynb", "/.github/")
# Files MLflow writes or envbuild reads by convention, whether or not the MLmodel names them.
CONVENTIONAL = (
    "MLmodel",
    "conda.yaml",
    "python_env.yaml",
    "requirements.txt",
    "constraints.txt",
    "input_example.json",
    "serving_input_example.json",
    "expected_predictions.json",
    "registered_model_meta",
    "data/",
    "code/",
    "artifacts/",
    "metadata/",
)
UNUSED_WARN_BYTES = 5_000_000

LFS_HINT = "run `git lfs pull` in the repository the model came from, then try again"
_LFS_HEADER = b"version https://git-lfs.github.com/spec/v1"
_LFS_MAX = 1024

# Secret-looking by name (gitignore syntax against the path inside the folder).
SECRET_NAMES = (
    "*.env",
    ".env",
    ".env.*",
    "!.env.example",
    "!.env.sample",
    "!.env.template",
    ".netrc",
    "_netrc",
    ".pypirc",
    ".pgpass",
    ".git-credentials",
    "credentials*",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "!*.pub",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    ".aws/",
    "**/.kube/config",
    "**/.docker/config.json",
)
# Well-known token formats; matched on text files below SCAN_MAX_BYTES.
TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("an AWS access key id", re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(rb"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("a GitHub token", re.compile(rb"\bgithub_pat_[A-Za-z0-9_]{22,}")),
    ("a Slack token", re.compile(rb"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a private key", re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
    ("an OpenAI-style API key", re.compile(rb"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}")),
    ("a Google API key", re.compile(rb"\bAIza[0-9A-Za-z_-]{35}")),
)
# `password = value` in configuration-like files; a value must look like one (not empty,
# not a ${VARIABLE} or <placeholder>).
_ASSIGNMENT = re.compile(
    rb"""(?ix)
    (?:^|[\s"'{,;])
    (?:password|passwd|pwd|secret|secret[_-]?key|api[_-]?key|apikey|access[_-]?token
       |auth[_-]?token|client[_-]?secret|db[_-]?pass(?:word)?|private[_-]?key)
    ["']?\s*[:=]\s*["']?
    (?![$<{%]|null\b|none\b|true\b|false\b|changeme\b|xxx)
    [^\s"'#,;]{4,}
    """
)
CONFIG_SUFFIXES = frozenset(
    {"", ".env", ".ini", ".cfg", ".conf", ".yaml", ".yml", ".json", ".txt", ".toml", ".properties"}
)
SCAN_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class LfsPointer:
    oid: str
    size: int


@dataclass(frozen=True, kw_only=True)
class ModelFile:
    path: str  # POSIX, relative to the model folder
    size: int
    referenced: bool  # the MLmodel (or MLflow's conventions) uses it

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "referenced": self.referenced}


@dataclass(frozen=True, kw_only=True)
class Excluded:
    path: str  # a folder left out whole ends with "/"
    size: int
    rule: str  # which rule left it out
    referenced: bool = False  # the MLmodel uses it (an exclude rule took it anyway)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "rule": self.rule,
            "referenced": self.referenced,
        }


@dataclass(frozen=True, kw_only=True)
class SecretFile:
    path: str
    why: str  # what it looks like; never the value
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "why": self.why, "line": self.line}


@dataclass(frozen=True, kw_only=True)
class LfsFile:
    path: str
    pointer: LfsPointer
    referenced: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "oid": self.pointer.oid,
            "size": self.pointer.size,
            "referenced": self.referenced,
        }


@dataclass(frozen=True, kw_only=True)
class Contents:
    """The folder sorted into what is copied and what is not. ``secrets`` are refused (they
    are neither copied nor may the image be built); ``allowed`` were secret-looking but
    allowed by name and are copied."""

    included: tuple[ModelFile, ...]
    excluded: tuple[Excluded, ...]
    secrets: tuple[SecretFile, ...]
    allowed: tuple[SecretFile, ...]
    lfs: tuple[LfsFile, ...]

    @property
    def unreferenced(self) -> tuple[ModelFile, ...]:
        return tuple(f for f in self.included if not f.referenced)

    def paths(self) -> frozenset[str]:
        return frozenset(f.path for f in self.included)

    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        for s in self.secrets:
            out.append(_secret_finding(s))
        for s in self.allowed:
            out.append(
                EB504.at(
                    Location(file=s.path),
                    f"secret-looking ({s.why}), copied into the image because "
                    "--allow-file names it",
                    severity=Severity.INFO,
                )
            )
        for p in self.lfs:
            out.append(lfs_finding(p.path, p.pointer, referenced=p.referenced))
        left_out = [e for e in self.excluded if e.rule.startswith("not used by the MLmodel")]
        if left_out:
            names = ", ".join(e.path for e in left_out[:5])
            more = f" and {len(left_out) - 5} more" if len(left_out) > 5 else ""
            out.append(
                EB410.at(
                    Location(),
                    f"{len(left_out)} file(s) nothing in the MLmodel uses are left out "
                    f"of the image (notebooks, .github/): {names}{more}",
                    hint="`envbuild show` lists every file and why; --allow-file PATH copies one",
                )
            )
        for e in self.excluded:
            if e.referenced and not e.rule.startswith("default:"):
                out.append(
                    EB410.at(
                        Location(file=e.path),
                        f"left out by {e.rule}, but the MLmodel uses it: the image "
                        "may fail to load the model",
                        hint="narrow the pattern, or add a !PATTERN line for this file",
                        severity=Severity.WARNING,
                    )
                )
        unused = sorted(self.unreferenced, key=lambda f: (-f.size, f.path))
        total = sum(f.size for f in unused)
        if total > UNUSED_WARN_BYTES:
            largest = ", ".join(f"{f.path} ({human_size(f.size)})" for f in unused[:3])
            out.append(
                EB410.at(
                    Location(file=unused[0].path),
                    f"{len(unused)} file(s) nothing in the MLmodel uses add "
                    f"{human_size(total)} to the image; largest: {largest}",
                    hint=f"leave them out with {IGNORE_FILE} in the model folder or "
                    "--exclude PATTERN (gitignore syntax)",
                    severity=Severity.WARNING,
                )
            )
        return out

    def blocking(self) -> list[Finding]:
        """What stops an image: secrets not allowed, LFS pointers the model needs."""
        return [f for f in self.findings() if f.severity is Severity.ERROR]

    def to_json(self) -> dict[str, Any]:
        return {
            "included": [f.to_json() for f in self.included],
            "unreferenced": [f.to_json() for f in self.unreferenced],
            "excluded": [e.to_json() for e in self.excluded],
            "secrets": [s.to_json() for s in self.secrets],
            "allowed": [s.to_json() for s in self.allowed],
            "lfs_pointers": [p.to_json() for p in self.lfs],
        }


class RefusedFiles(FindingsError):
    """The folder holds files an image must not carry as they are (exit 1)."""


# --------------------------------------------------------------------------------------
# detectors


def human_size(n: int) -> str:
    """Decimal units; image sizes print the same way (envbuild.build re-exports it)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit in ("B", "kB") else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


def parse_lfs_pointer(data: bytes) -> LfsPointer | None:
    """A Git LFS pointer file (the spec: a version line, ``oid sha256:...``, ``size N``,
    under 1 KiB), or None."""
    if len(data) >= _LFS_MAX or not data.startswith(_LFS_HEADER):
        return None
    oid = re.search(rb"^oid sha256:([0-9a-f]{64})$", data, re.M)
    size = re.search(rb"^size (\d+)$", data, re.M)
    if oid is None or size is None:
        return None
    return LfsPointer(oid=oid.group(1).decode(), size=int(size.group(1)))


def lfs_pointer_at(path: Path) -> LfsPointer | None:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size >= _LFS_MAX:
            return None
        return parse_lfs_pointer(path.read_bytes())
    except OSError:
        return None


def lfs_finding(file: str, pointer: LfsPointer, *, referenced: bool = True) -> Finding:
    if referenced:
        return EB107.at(
            Location(file=file),
            f"a Git LFS pointer, not the file: the real file "
            f"({human_size(pointer.size)}) was never downloaded",
            hint=LFS_HINT,
        )
    return EB107.at(
        Location(file=file),
        f"a Git LFS pointer to a {human_size(pointer.size)} file nothing in the "
        "MLmodel uses; not copied into the image",
        hint=LFS_HINT + " (or leave it out with " + IGNORE_FILE + ")",
        severity=Severity.WARNING,
    )


_SECRET_SPEC = pathspec.GitIgnoreSpec.from_lines(SECRET_NAMES)


def _is_text(data: bytes) -> bool:
    return b"\x00" not in data[:8192]


def secret_in(rel: str, path: Path, *, generic: bool = True) -> SecretFile | None:
    """Why the file at ``rel`` looks like a secret (its name, or a line that matches a
    token format), or None. Only text files below SCAN_MAX_BYTES are read."""
    if _SECRET_SPEC.match_file(rel):
        return SecretFile(path=rel, why="its name is one credentials are kept under")
    try:
        if not path.is_file() or path.stat().st_size > SCAN_MAX_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if not _is_text(data):
        return None
    for what, pattern in TOKEN_PATTERNS:
        match = pattern.search(data)
        if match is not None:
            return SecretFile(path=rel, why=f"{what}", line=data.count(b"\n", 0, match.start()) + 1)
    suffix = posixpath.splitext(rel)[1].lower()
    if generic and (suffix in CONFIG_SUFFIXES or posixpath.basename(rel).startswith(".env")):
        match = _ASSIGNMENT.search(data)
        if match is not None:
            return SecretFile(
                path=rel,
                why="a password or API key assignment",
                line=data.count(b"\n", 0, match.start()) + 1,
            )
    return None


def _secret_finding(s: SecretFile) -> Finding:
    where = f"line {s.line}: " if s.line else ""
    return EB504.at(
        Location(file=s.path, line=s.line),
        f"a secret-looking file ({where}{s.why}); envbuild never copies it into an image",
        hint=f"leave it out ({IGNORE_FILE} or --exclude '{s.path}'), or ship it on purpose "
        f"with --allow-file {s.path}",
    )


# --------------------------------------------------------------------------------------
# what the MLmodel uses


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def _relative(value: str) -> str | None:
    if not value or len(value) > 1024 or "\n" in value or "://" in value or "\x00" in value:
        return None
    norm = posixpath.normpath(value.replace("\\", "/"))
    if norm in (".", "") or norm.startswith(("../", "/")) or norm == "..":
        return None
    return norm


def referenced(folder: ModelFolder) -> tuple[frozenset[str], tuple[str, ...]]:
    """(files, folders) the model uses: every flavor value naming a path in the folder
    (data, pickled_model, model_path, python_model, artifacts, code, code_paths, ...), the
    environment files read, the input and serving examples, and MLflow's conventional
    names."""
    from envbuild.read.mlmodel import loaded_code_path  # envbuild.read imports this module

    root = folder.path
    m = folder.mlmodel
    candidates: list[str] = [c.rstrip("/") for c in CONVENTIONAL]
    for flavor in m.flavors:
        candidates.extend(_strings(flavor.params))
        code_path = flavor.params.get("model_code_path")
        if isinstance(code_path, str):  # absolute as MLflow records it: the file it loads
            candidates.append(loaded_code_path(code_path))
    candidates.extend(_strings(m.saved_input_example_info or {}))
    candidates.extend(folder.env.spec.files)
    if folder.input_example is not None:
        candidates.append(folder.input_example.file)
        if folder.input_example.serving_file:
            candidates.append(folder.input_example.serving_file)
    files: set[str] = set()
    dirs: set[str] = set()
    for value in candidates:
        rel = _relative(value)
        if rel is None:
            continue
        target = root / rel
        try:
            if target.is_dir():
                dirs.add(rel)
            elif target.exists() or target.is_symlink():
                files.add(rel)
        except OSError:
            continue
    return frozenset(files), tuple(sorted(dirs))


def _under(rel: str, dirs: Iterable[str]) -> bool:
    return any(rel.startswith(d + "/") for d in dirs)


# --------------------------------------------------------------------------------------
# the selection


def _spec_with_lines(
    lines: Sequence[str], label: str
) -> tuple[pathspec.GitIgnoreSpec, list[str]] | None:
    """A spec from gitignore lines and, per pattern, the rule text to report."""
    kept = [(i, line.rstrip("\n")) for i, line in enumerate(lines, 1) if line.strip()]
    if not kept:
        return None
    spec = pathspec.GitIgnoreSpec.from_lines([line for _, line in kept])
    if len(spec.patterns) != len(kept):  # pragma: no cover - pathspec kept another count
        return spec, [label] * len(spec.patterns)
    if label == IGNORE_FILE:
        return spec, [f"{IGNORE_FILE}:{i}: {line.strip()}" for i, line in kept]
    return spec, [f"{label} {line.strip()}" for _, line in kept]


def _rule(spec: tuple[pathspec.GitIgnoreSpec, list[str]] | None, rel: str) -> str | None:
    if spec is None:
        return None
    result = spec[0].check_file(rel)
    if not result.include or result.index is None:
        return None
    return spec[1][result.index]


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def _walk(root: Path) -> Iterator[tuple[str, Path, bool]]:
    """(relative path, path, pruned) for every non-folder entry, sorted; envbuild's always
    excluded folders are yielded once, as ``name/`` with pruned True, and not entered."""
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel_base = base.relative_to(root).as_posix()
        prefix = "" if rel_base == "." else rel_base + "/"
        for name in sorted(d for d in dirnames if d in _PRUNED_DIRS):
            yield f"{prefix}{name}/", base / name, True
        entries = [d for d in dirnames if (base / d).is_symlink()] + list(filenames)
        dirnames[:] = sorted(d for d in dirnames if d not in _PRUNED_DIRS)
        for name in sorted(entries):
            yield f"{prefix}{name}", base / name, False


def _normalize(value: str) -> str:
    value = value.replace("\\", "/").strip()
    while value.startswith("./"):
        value = value[2:]
    return value


def select(
    folder: ModelFolder,
    *,
    exclude: Sequence[str] = (),
    allow_files: Sequence[str] = (),
) -> Contents:
    """Sort the model folder's files into copied, left out (with the rule), secret-looking
    and LFS pointers. ``exclude`` patterns use gitignore syntax; ``allow_files`` are paths
    inside the folder copied although they look secret or unused."""
    root = folder.path.resolve()
    defaults = _spec_with_lines(DEFAULT_EXCLUDES, "default:")
    unused = _spec_with_lines(UNUSED_EXCLUDES, "not used by the MLmodel:")
    ignore_path = root / IGNORE_FILE
    ignore_lines: list[str] = []
    if ignore_path.is_file():
        ignore_lines = ignore_path.read_text(encoding="utf-8", errors="replace").splitlines()
    ignore = _spec_with_lines(ignore_lines, IGNORE_FILE)
    excludes = _spec_with_lines(list(exclude), "--exclude")
    allowed_names = {_normalize(a) for a in allow_files}
    ref_files, ref_dirs = referenced(folder)
    examples = {folder.input_example.file} if folder.input_example else set()
    if folder.input_example and folder.input_example.serving_file:
        examples.add(folder.input_example.serving_file)

    included: list[ModelFile] = []
    excluded: list[Excluded] = []
    secrets: list[SecretFile] = []
    allowed: list[SecretFile] = []
    lfs: list[LfsFile] = []
    for rel, path, pruned in _walk(root):
        if pruned:
            excluded.append(Excluded(path=rel, size=_tree_size(path), rule=f"default: {rel}"))
            continue
        try:
            size = path.lstat().st_size
        except OSError:
            continue
        is_ref = rel in ref_files or _under(rel, ref_dirs)
        rule = _rule(defaults, rel) or _rule(ignore, rel) or _rule(excludes, rel)
        if rule is not None:
            excluded.append(Excluded(path=rel, size=size, rule=rule, referenced=is_ref))
            continue
        if not is_ref and rel not in allowed_names:
            rule = _rule(unused, rel)
            if rule is not None:
                excluded.append(Excluded(path=rel, size=size, rule=rule))
                continue
        pointer = lfs_pointer_at(path)
        if pointer is not None:
            lfs.append(LfsFile(path=rel, pointer=pointer, referenced=is_ref))
            excluded.append(Excluded(path=rel, size=size, rule="Git LFS pointer"))
            continue
        secret = _safe_secret(root, rel, path, generic=rel not in examples and rel != "MLmodel")
        if secret is not None:
            if rel in allowed_names:
                allowed.append(secret)
            else:
                secrets.append(secret)
                excluded.append(Excluded(path=rel, size=size, rule="secret-looking"))
                continue
        included.append(ModelFile(path=rel, size=size, referenced=is_ref))
    return Contents(
        included=tuple(sorted(included, key=lambda f: f.path)),
        excluded=tuple(sorted(excluded, key=lambda e: e.path)),
        secrets=tuple(secrets),
        allowed=tuple(allowed),
        lfs=tuple(lfs),
    )


def _safe_secret(root: Path, rel: str, path: Path, *, generic: bool) -> SecretFile | None:
    """Names are judged for every entry; contents only where the entry resolves inside the
    folder (a link pointing out of it is refused when the context is written, not read)."""
    if _SECRET_SPEC.match_file(rel):
        return secret_in(rel, path, generic=generic)
    try:
        target = path.resolve()
    except OSError:
        return None
    if target != root and root not in target.parents:
        return None
    return secret_in(rel, target, generic=generic)

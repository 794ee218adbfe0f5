"""The training environment: which distributions an interpreter has, at which versions,
which modules each provides, what each requires, and how each was installed.

``inspect_env(None)`` describes the interpreter envbuild runs in; ``inspect_env(path)`` runs
``envbuild/_scripts/introspect.py`` (standard library only, Python 3.8+) in another interpreter and
reads its JSON, so envbuild can live in its own environment (pipx, uvx) and still inspect a
conda env or a venv.

Why not pipdeptree (so envbuild does not depend on it): its ``--python`` mode runs
pipdeptree's own code inside the inspected interpreter, and pipdeptree 4.x needs Python
>= 3.11 there (and to install envbuild on 3.10), while training environments on 3.8-3.10
are common; it also reports neither the modules a distribution provides, nor
``direct_url.json``, nor the standard library of the target, which infer needs. Reading the
``*.dist-info`` folders directly gives all of that in one short subprocess.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as PkgRequirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from envbuild.errors import ToolError
from envbuild.findings import Code, Severity, table

log = logging.getLogger("envbuild")

EB910 = Code(
    "EB910", Severity.ERROR, "the interpreter named by --python does not exist or cannot be run"
)
EB911 = Code(
    "EB911",
    Severity.ERROR,
    "inspecting the interpreter's environment failed (its output was not the expected JSON)",
)
CODES: dict[str, str] = table(EB910, EB911)

_SCRIPT = Path(__file__).parent / "_scripts" / "introspect.py"
_EXTRA = re.compile(r"""\bextra\s*==\s*['"]([^'"]+)['"]""")


@dataclass(frozen=True, kw_only=True)
class DirectUrl:
    """How a distribution was installed when not from an index (PEP 610 direct_url.json)."""

    url: str
    kind: Literal["editable", "local", "vcs", "archive"]
    vcs: str | None = None
    commit_id: str | None = None
    requested_revision: str | None = None

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file:")

    def pep508_url(self) -> str | None:
        """A URL another machine can install the same code from, if there is one: a VCS
        commit or a remote archive."""
        if self.kind == "vcs" and self.vcs and self.commit_id and not self.is_local:
            return f"{self.vcs}+{self.url}@{self.commit_id}"
        if self.kind == "archive" and not self.is_local:
            return self.url
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "kind": self.kind,
            "vcs": self.vcs,
            "commit_id": self.commit_id,
            "requested_revision": self.requested_revision,
        }


def _direct_url(raw: Any) -> DirectUrl | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
        return None
    url = raw["url"]
    if isinstance(raw.get("vcs_info"), dict):
        vcs = raw["vcs_info"]
        return DirectUrl(
            url=url,
            kind="vcs",
            vcs=str(vcs.get("vcs") or "git"),
            commit_id=str(vcs["commit_id"]) if vcs.get("commit_id") else None,
            requested_revision=str(vcs["requested_revision"])
            if vcs.get("requested_revision")
            else None,
        )
    if isinstance(raw.get("dir_info"), dict):
        editable = bool(raw["dir_info"].get("editable"))
        return DirectUrl(url=url, kind="editable" if editable else "local")
    return DirectUrl(url=url, kind="archive")


@dataclass(frozen=True, kw_only=True)
class Distribution:
    name: str  # canonical (PEP 503)
    display_name: str
    version: str
    top_level: tuple[str, ...]
    modules: frozenset[str]  # dotted modules, only under top-levels shared with others
    requires: tuple[str, ...]  # Requires-Dist lines as written (parsed on demand)
    direct_url: DirectUrl | None
    installer: str | None
    requested: bool
    location: str

    @property
    def parsed_version(self) -> Version | None:
        try:
            return Version(self.version)
        except InvalidVersion:
            return None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "version": self.version,
            "top_level": list(self.top_level),
            "requires": list(self.requires),
            "direct_url": self.direct_url.to_json() if self.direct_url else None,
            "installer": self.installer,
            "location": self.location,
        }


@dataclass(frozen=True, kw_only=True)
class IndexSetting:
    option: str  # --index-url, --extra-index-url, --find-links
    value: str
    source: str  # an environment variable ($PIP_INDEX_URL) or a pip.conf path


@dataclass(frozen=True, kw_only=True)
class InstalledEnv:
    executable: str
    python_version: str
    markers: Mapping[str, str]
    stdlib: frozenset[str]
    distributions: Mapping[str, Distribution]
    index: tuple[IndexSetting, ...] = ()
    sys_path: tuple[str, ...] = ()
    _by_top: dict[str, list[Distribution]] = field(default_factory=dict, repr=False, compare=False)
    _closures: dict[str, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)
    _parsed: dict[str, PkgRequirement | None] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for dist in self.distributions.values():
            for top in dist.top_level:
                self._by_top.setdefault(top, []).append(dist)

    def get(self, name: str) -> Distribution | None:
        return self.distributions.get(canonicalize_name(name))

    def is_stdlib(self, module: str) -> bool:
        top = module.split(".")[0]
        return top in self.stdlib or top in ("__builtin__", "__main__", "__future__")

    def providers(self, module: str) -> tuple[Distribution, ...]:
        """The distributions providing ``module``: all owners of its top-level name, narrowed
        to those that provide the deepest enclosing package actually named (so
        ``google.protobuf.message`` is protobuf's, not google-auth's)."""
        top = module.split(".")[0]
        owners = self._by_top.get(top, [])
        if len(owners) <= 1:
            return tuple(owners)
        parts = module.split(".")
        for depth in range(len(parts), 1, -1):
            prefix = ".".join(parts[:depth])
            hits = [d for d in owners if prefix in d.modules]
            if hits:
                return tuple(hits)
        return tuple(owners)

    def requirements_of(self, name: str, extras: Iterable[str] = ()) -> list[PkgRequirement]:
        """Requires-Dist of a distribution whose markers hold in the inspected interpreter
        (for its base and the given extras)."""
        dist = self.get(name)
        if dist is None:
            return []
        wanted = {""} | {canonicalize_name(e) for e in extras}
        out = []
        for text in dist.requires:
            # Most Requires-Dist lines belong to extras nobody asked for: skip those before
            # paying for a full parse (hundreds of lines in an ML environment).
            named = _EXTRA.findall(text)
            if named and not any(canonicalize_name(x) in wanted for x in named):
                continue
            req = self._parse_req(text)
            if req is None:
                continue
            if req.marker is None:
                out.append(req)
                continue
            for extra in wanted:
                env = {**self.markers, "extra": extra}
                try:
                    ok = req.marker.evaluate(env)
                except (UndefinedComparison, UndefinedEnvironmentName, InvalidMarker):
                    ok = False
                if ok:
                    out.append(req)
                    break
        return out

    def _parse_req(self, text: str) -> PkgRequirement | None:
        if text not in self._parsed:
            try:
                self._parsed[text] = PkgRequirement(text)
            except InvalidRequirement:
                self._parsed[text] = None
        return self._parsed[text]

    def closure(self, name: str) -> frozenset[str]:
        """Every installed distribution ``name`` requires, directly or not (not itself)."""
        key = canonicalize_name(name)
        cached = self._closures.get(key)
        if cached is not None:
            return cached
        seen: set[str] = set()
        todo: list[tuple[str, frozenset[str]]] = [(key, frozenset())]
        visited: set[tuple[str, frozenset[str]]] = set()
        while todo:
            current, extras = todo.pop()
            if (current, extras) in visited:
                continue
            visited.add((current, extras))
            for req in self.requirements_of(current, extras):
                dep = canonicalize_name(req.name)
                if dep not in self.distributions:
                    continue
                seen.add(dep)
                todo.append((dep, frozenset(req.extras)))
        seen.discard(key)
        result = frozenset(seen)
        self._closures[key] = result
        return result

    def to_json(self) -> dict[str, Any]:
        return {
            "executable": self.executable,
            "python_version": self.python_version,
            "distributions": len(self.distributions),
        }


def _parse(doc: Any, executable: str) -> InstalledEnv:
    if not isinstance(doc, dict) or doc.get("schema") != 1:
        raise ToolError(
            f"{executable}: unexpected introspection output",
            hint="use a CPython 3.8+ interpreter",
            code="EB911",
        )
    dists: dict[str, Distribution] = {}
    for raw in doc.get("distributions") or ():
        requires = [str(t) for t in raw.get("requires") or ()]
        name = canonicalize_name(raw["name"])
        if name in dists:
            continue
        dists[name] = Distribution(
            name=name,
            display_name=str(raw["name"]),
            version=str(raw.get("version") or ""),
            top_level=tuple(raw.get("top_level") or ()),
            modules=frozenset(raw.get("modules") or ()),
            requires=tuple(requires),
            direct_url=_direct_url(raw.get("direct_url")),
            installer=raw.get("installer"),
            requested=bool(raw.get("requested")),
            location=str(raw.get("location") or ""),
        )
    return InstalledEnv(
        executable=str(doc.get("executable") or executable),
        python_version=str(doc.get("python_version") or ""),
        markers={str(k): str(v) for k, v in (doc.get("markers") or {}).items()},
        stdlib=frozenset(doc.get("stdlib") or ()),
        distributions=dists,
        index=tuple(
            IndexSetting(option=i["option"], value=i["value"], source=i["source"])
            for i in doc.get("index") or ()
        ),
        sys_path=tuple(doc.get("sys_path") or ()),
    )


def introspection_source() -> str:
    return _SCRIPT.read_text(encoding="utf-8")


def inspect_env(python: str | os.PathLike[str] | None = None) -> InstalledEnv:
    """Describe the environment of ``python`` (a path to an interpreter), or of the running
    interpreter when None."""
    return start_inspect(python)()


def start_inspect(python: str | os.PathLike[str] | None = None) -> Callable[[], InstalledEnv]:
    """Start inspecting ``python`` in a subprocess and return a function that waits for
    and returns the result, so the caller can read and scan the model meanwhile."""
    if python is None:
        from envbuild._scripts import introspect as _introspect

        return lambda: _parse(_introspect.collect(), "(this interpreter)")
    exe = str(python)
    path = Path(exe)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolError(
            f"--python {exe}: no such interpreter",
            hint="pass the path of a Python executable, e.g. ~/venvs/train/bin/python",
            code="EB910",
        )
    log.debug("inspecting %s", exe)
    try:
        child = subprocess.Popen(
            [exe, "-c", introspection_source()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        raise ToolError(
            f"--python {exe}: cannot run it ({exc})",
            hint="check that it is a working Python 3.8+ interpreter",
            code="EB910",
        ) from None

    def wait() -> InstalledEnv:
        try:
            stdout, stderr = child.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise ToolError(
                f"--python {exe}: inspecting its environment took over 120 s",
                hint="check that it is a working Python 3.8+ interpreter",
                code="EB910",
            ) from None
        return _finish(exe, child.returncode, stdout, stderr)

    return wait


def _finish(exe: str, returncode: int, stdout: bytes, stderr: bytes) -> InstalledEnv:
    if returncode != 0:
        last = (stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        raise ToolError(
            f"--python {exe}: inspecting its environment failed: {last}",
            hint="envbuild needs a CPython 3.8+ interpreter there",
            code="EB911",
        )
    try:
        doc = json.loads(stdout)
    except ValueError:
        raise ToolError(
            f"--python {exe}: its output was not JSON",
            hint="a sitecustomize or .pth file may print on start; check `python -c pass`",
            code="EB911",
        ) from None
    return _parse(doc, exe)

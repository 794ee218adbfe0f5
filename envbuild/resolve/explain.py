"""A failed resolution explained as findings (EB31x) that point at the requirement lines
on each side, with the nearest versions that do resolve when ``suggest`` is on."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as PkgRequirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from envbuild._adapters import uv as _uv
from envbuild._redact import redact
from envbuild.findings import Code, Finding, Location, Severity, table
from envbuild.read import EnvSpec, Requirement
from envbuild.resolve.stack import TORCH_FAMILY
from envbuild.resolve.static import req_ref
from envbuild.resolve.target import Target
from envbuild.versions import python_of

if TYPE_CHECKING:
    from envbuild.resolve import Inputs

EB310 = Code(
    "EB310",
    Severity.ERROR,
    "requirements that cannot be installed together (the lines on each side)",
)
EB311 = Code("EB311", Severity.ERROR, "a requirement that needs another Python than the target")
EB312 = Code("EB312", Severity.ERROR, "a package or version the index does not have")
EB313 = Code("EB313", Severity.ERROR, "a package with no installable files for the target platform")
EB314 = Code("EB314", Severity.WARNING, "a yanked release is pinned")
EB315 = Code(
    "EB315",
    Severity.ERROR,
    "the resolver failed for another reason (index unreachable, bad option)",
)
CODES: dict[str, str] = table(EB310, EB311, EB312, EB313, EB314, EB315)


def _chain(edges: Sequence[_uv.Edge], start: str, goal: str) -> list[_uv.Edge] | None:
    """Shortest path of dependency edges from ``start`` to ``goal``."""
    frontier: list[tuple[str, list[_uv.Edge]]] = [(start, [])]
    seen = {start}
    while frontier:
        node, path = frontier.pop(0)
        if node == goal:
            return path
        for e in edges:
            if e.src == node and e.dst not in seen:
                seen.add(e.dst)
                frontier.append((e.dst, [*path, e]))
    return None


def _line_refs(reqs: Sequence[Requirement]) -> str:
    return " and ".join(f"{r.raw!r} ({req_ref(r)})" for r in reqs)


def explain_failure(
    stderr: str,
    inputs: Inputs,
    target: Target,
    spec: EnvSpec,
    *,
    suggest: bool = True,
) -> list[Finding]:
    """uv's failure (``stderr``) as findings, in this order: EB312/313, EB311, EB310,
    EB314, and EB315 when none of those is an error."""
    facts = _uv.parse_failure(stderr)
    direct = inputs.direct
    out: list[Finding] = []
    involved = [name for name, _ in facts.required if name in direct]
    involved = list(dict.fromkeys(involved))
    missing_names = {n for n, _ in facts.missing}
    python_loc = spec.python.location if spec.python else Location(field="--python-version")

    # a package or version that does not exist
    out.extend(_unavailable(facts, inputs, target))
    # packages that need another Python
    python_blocked = _python_blocked(facts, target)
    python_direct = [n for n in python_blocked if n in direct]
    conflict = [n for n in involved if n not in missing_names]
    if python_blocked and len(conflict) <= 1:
        out.extend(
            _needs_python(
                facts, inputs, target, python_blocked, conflict, python_loc, suggest=suggest
            )
        )
        python_direct = []
    if len(conflict) >= 2 or (conflict and not out):
        out.append(
            _conflict(
                facts, inputs, target, conflict, python_direct, python_blocked, suggest=suggest
            )
        )
    out.extend(_yanked(facts, direct))
    if not any(f.severity is Severity.ERROR for f in out):
        first = facts.text or _uv.error_text(stderr) or stderr.strip()
        out.append(
            EB315.at(
                Location(),
                "the resolver failed: " + redact(first[:500]),
                hint="check the index URLs and the network; offline, pass --offline "
                "--find-links DIR",
            )
        )
    return out


def _unavailable(facts: _uv.Explained, inputs: Inputs, target: Target) -> list[Finding]:
    """EB312 (no such package or version) and EB313 (no files for the target)."""
    direct = inputs.direct
    out: list[Finding] = []
    for name, text in facts.missing:
        reqs = direct.get(name) or inputs.constraint_of.get(name) or []
        where = reqs[0].location if reqs else Location()
        offline = inputs.request.offline or inputs.request.no_index
        hint = (
            "add the file to the wheelhouse (--find-links DIR)"
            if offline
            else "check the name and version on the index (uv pip compile; "
            "https://pypi.org/project/<name>/), or the index URL lines"
        )
        local = next((r for r in reqs if "+" in (r.pinned_version or "")), None)
        if local is not None and not offline:
            # MLflow's inference pins the training venv's local build (torch==2.13.0+cpu
            # from PyTorch's own index); PyPI never has local versions
            version = local.pinned_version or ""
            public, _, tag = version.partition("+")
            hint = (
                f"{name} {version} is a local build (+{tag}), which PyPI never has: pass "
                f"--find-links DIR holding its wheel, or pin {name}=={public}"
                + (" (--torch cpu for torch's CPU build)" if name in TORCH_FAMILY else "")
                + "; remove it if the model does not need it"
            )
        out.append(
            EB312.at(
                where,
                f"{text} is not available"
                + (" in the wheelhouse / offline cache" if offline else " on the index")
                + (f" (required by {_line_refs(reqs)})" if reqs else ""),
                hint=hint,
            )
        )
    for name, text in facts.no_wheels:
        reqs = direct.get(name, [])
        out.append(
            EB313.at(
                reqs[0].location if reqs else Location(),
                f"{text} has no installable files for {target.describe()}"
                + (f" (required by {_line_refs(reqs)})" if reqs else ""),
                hint="pick a version with wheels for the target, or change --platform / "
                "--python-version",
            )
        )
    return out


def _python_blocked(facts: _uv.Explained, target: Target) -> set[str]:
    """The packages uv says depend on a Python that excludes the target's."""
    python_blocked: set[str] = set()
    for name, _text, needs in facts.python_needs:
        try:
            pyspec = SpecifierSet(needs.removeprefix("Python"))
        except InvalidSpecifier:
            continue
        if pyspec.contains(target.python, prereleases=True):
            continue
        python_blocked.add(name)
    return python_blocked


def _needs_python(
    facts: _uv.Explained,
    inputs: Inputs,
    target: Target,
    python_blocked: set[str],
    conflict: list[str],
    python_loc: Location,
    *,
    suggest: bool,
) -> list[Finding]:
    """EB311: one finding per package that needs another Python, with the chain to it."""
    direct = inputs.direct
    out: list[Finding] = []
    for name in sorted(python_blocked):
        roots = [n for n in conflict if _chain(facts.edges, n, name) is not None] or conflict
        needs = next(nd for n, _, nd in facts.python_needs if n == name)
        pkg_text = next(t for n, t, _ in facts.python_needs if n == name)
        reqs = direct.get(name) or [r for n in roots for r in direct.get(n, [])]
        via = ""
        if name not in direct and roots:
            path = _chain(facts.edges, roots[0], name)
            if path:
                via = " via " + " → ".join([path[0].src_text, *(e.dst_text for e in path)])
        hint = f"target a newer Python (--python-version {_min_python(needs)})"
        if suggest and reqs:
            near = _suggest(inputs, reqs[0])
            if near:
                hint += f", or use {near}, the nearest version that installs on {target.describe()}"
        out.append(
            EB311.at(
                reqs[0].location if reqs else python_loc,
                f"{pkg_text} needs {needs}, but the target is Python "
                f"{target.python} ({python_loc})"
                + (f"; required by {_line_refs(reqs)}" if reqs else "")
                + via,
                hint=hint,
            )
        )
    return out


def _conflict(
    facts: _uv.Explained,
    inputs: Inputs,
    target: Target,
    conflict: list[str],
    python_direct: list[str],
    python_blocked: set[str],
    *,
    suggest: bool,
) -> Finding:
    """EB310: the lines on each side of the conflict, the chains between them, and (with
    ``suggest``) the nearest versions that resolve."""
    direct = inputs.direct
    sides = [r for n in conflict for r in direct.get(n, [])][:4]
    chains: list[str] = []
    for a in conflict:
        for b in conflict:
            if a == b:
                continue
            path = _chain(facts.edges, a, b)
            if path:
                chains.append(" → ".join([path[0].src_text, *(e.dst_text for e in path)]))
            else:
                # both depend on a common third package
                for e1 in facts.edges:
                    if e1.src == a and any(e2.src == b and e2.dst == e1.dst for e2 in facts.edges):
                        e2 = next(e for e in facts.edges if e.src == b and e.dst == e1.dst)
                        chains.append(
                            f"{e1.src_text} → {e1.dst_text} but {e2.src_text} → {e2.dst_text}"
                        )
    chains = list(dict.fromkeys(chains))
    if not chains:
        chains = [" → ".join([e.src_text, e.dst_text]) for e in facts.edges if e.src in conflict][
            :3
        ]
    python_note = ""
    if python_direct or python_blocked:
        python_note = "; on Python {} some versions are ruled out: {}".format(
            target.python,
            ", ".join(sorted({t for n, t, _ in facts.python_needs if n in python_blocked})),
        )
    hint = "relax one side"
    if suggest:
        options = []
        relax = [
            (name, req)
            for name in conflict[:3]
            for req in direct.get(name, [])[:1]
            if req.requirement is not None
        ]
        # every relaxed resolution at once: they wait on the index, not the CPU
        with ThreadPoolExecutor(max_workers=max(1, len(relax))) as pool:
            nearest = list(pool.map(lambda nr: _suggest(inputs, nr[1]), relax))
        for (name, _req), near in zip(relax, nearest, strict=True):
            if near:
                others = ", ".join(
                    r.raw for n in conflict if n != name for r in direct.get(n, [])[:1]
                )
                options.append(f"{near} (keeping {others})")
        if options:
            hint = "nearest versions that resolve: " + "; or ".join(options)
    msg = (
        f"{_line_refs(sides)} cannot be installed together on {target.describe()}"
        if len(sides) >= 2
        else f"{_line_refs(sides)} cannot be installed on {target.describe()}"
    )
    if chains:
        msg += ": " + "; ".join(chains)
    return EB310.at(sides[0].location if sides else Location(), msg + python_note, hint=hint)


def _yanked(facts: _uv.Explained, direct: dict[str, list[Requirement]]) -> list[Finding]:
    """EB314: a pinned release the index has yanked."""
    out: list[Finding] = []
    for name, text in facts.yanked:
        reqs = direct.get(name, [])
        if reqs and any(r.pinned_version for r in reqs):
            out.append(
                EB314.at(
                    reqs[0].location,
                    f"{text} was yanked from the index",
                    hint="pin another release",
                )
            )
    return out


def _min_python(needs: str) -> str:
    v = python_of(needs)
    return f"{v.major}.{v.minor}" if v else "3.x"


def _relaxed(inputs: Inputs, req: Requirement, spec: str) -> list[str]:
    """The input lines with ``req`` replaced by ``name<spec>`` (markers kept)."""
    pkg = req.requirement
    assert pkg is not None
    relaxed = PkgRequirement(str(pkg))
    relaxed.specifier = SpecifierSet(spec)
    lines = []
    for line in inputs.lines:
        try:
            other = PkgRequirement(line)
        except InvalidRequirement:
            lines.append(line)
            continue
        if canonicalize_name(other.name) == req.name:
            continue
        lines.append(line)
    lines.append(str(relaxed))
    return lines


def _suggest(inputs: Inputs, req: Requirement) -> str | None:
    """The nearest version of ``req``'s package that resolves with everything else kept:
    the highest at or below its pin, else the lowest above it (two uv runs)."""
    pin = req.pinned_version
    if req.name is None or req.requirement is None:
        return None
    below_spec = f"<={pin}" if pin else ""
    above_spec = f">{pin}" if pin else ""
    runs: list[tuple[str, _uv.CompileRequest]] = []
    base = inputs.request
    if pin:
        runs.append(
            (
                "below",
                replace(
                    base,
                    requirements=tuple(_relaxed(inputs, req, below_spec)),
                    generate_hashes=False,
                ),
            )
        )
        runs.append(
            (
                "above",
                replace(
                    base,
                    requirements=tuple(_relaxed(inputs, req, above_spec)),
                    generate_hashes=False,
                    resolution="lowest-direct",
                ),
            )
        )
    else:
        runs.append(
            (
                "any",
                replace(base, requirements=tuple(_relaxed(inputs, req, "")), generate_hashes=False),
            )
        )
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        results = list(
            pool.map(lambda r: (r[0], _uv.compile_requirements(r[1], timeout=120)), runs)
        )
    found: dict[str, str] = {}
    for kind, res in results:
        if not res.ok:
            continue
        for c in _uv.parse_compiled(res.stdout):
            if canonicalize_name(c.name) == req.name:
                found[kind] = c.version
    if not found:
        return None
    if pin and "below" in found and "above" in found:
        return f"{req.name}=={found['below']} or {req.name}=={found['above']}"
    version = found.get("below") or found.get("above") or found.get("any")
    return f"{req.name}=={version}"

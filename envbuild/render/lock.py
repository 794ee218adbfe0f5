"""Which locked distributions only MLflow's serving runtime needs, from the structured
Lock's requirement graph (each pin's ``requested_by``, what the lock's ``# via`` lines
say)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from packaging.utils import canonicalize_name

from envbuild.infer.names import MLFLOW_FAMILY
from envbuild.resolve.lock import Pin

_DIST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def serving_runtime_only(pins: Iterable[Pin]) -> tuple[str, ...]:
    """The locked distributions that only MLflow needs (mlflow-skinny, databricks-sdk,
    opentelemetry, ...): MLflow and the closure of its requirements, minus whatever the
    model's own requirements (and the serving stack's pandas and numpy) also need.

    A lock without the graph (no ``requested_by``) gives ``()``, so everything is treated
    as the model's own."""
    parents: dict[str, set[str]] = {p.name: set(p.requested_by) for p in pins}
    if not any(parents.values()):
        return ()
    children: dict[str, set[str]] = {name: set() for name in parents}
    roots: set[str] = set()
    for name, via in parents.items():
        for parent in via:
            key = canonicalize_name(parent) if _DIST_NAME.match(parent) else ""
            if key in children:
                children[key].add(name)
            else:  # a file reference (requirements.txt:3) or the serving stack
                roots.add(name)

    def closure(start: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(start)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(children.get(name, ()))
        return seen

    runtime = closure(n for n in parents if n in MLFLOW_FAMILY)
    model = closure(roots - MLFLOW_FAMILY)
    return tuple(sorted(runtime - model))

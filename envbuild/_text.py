"""Human-readable text for ``envbuild show``."""

from __future__ import annotations

from envbuild.contents import Contents, human_size
from envbuild.read import DataType, ModelFolder, Schema


def _type(t: DataType) -> str:
    if t.items is not None:
        return f"array<{_type(t.items)}>"
    if t.values is not None:
        return f"map<{_type(t.values)}>"
    if t.properties:
        inner = ", ".join(f"{n}: {_type(p)}" + ("" if req else "?") for n, p, req in t.properties)
        return f"object{{{inner}}}"
    return t.kind.value


def _schema(schema: Schema | None) -> list[str]:
    if schema is None:
        return ["    (none)"]
    if schema.kind == "tensors":
        return [
            f"    {t.name or '(unnamed)'}: tensor {t.dtype} {list(t.shape)}" for t in schema.tensors
        ]
    return [
        f"    {c.name or '(unnamed)'}: {_type(c.type)}" + ("" if c.required else " (optional)")
        for c in schema.columns
    ]


def show_text(folder: ModelFolder) -> str:
    m = folder.mlmodel
    lines = [f"model      {folder.path}"]
    if m.run_id:
        lines.append(f"run id     {m.run_id}")
    if m.model_uuid:
        lines.append(f"model uuid {m.model_uuid}")
    if m.mlflow_version:
        lines.append(f"mlflow     {m.mlflow_version}")
    lines.append(f"python     {folder.python_version or '(not recorded)'}")
    if m.pyfunc:
        lines.append(f"loader     {m.pyfunc.loader_module or '(none)'}")
    lines.append("flavors")
    for f in m.flavors:
        version = f" {f.version}" if f.version else ""
        lib = (
            f" ({f.library}{version})"
            if f.library
            else (f" ({f.version_field}={f.version})" if f.version else "")
        )
        lines.append(f"    {f.name}{lib}")
    spec = folder.env.spec
    lines.append(f"requirements ({', '.join(spec.files) or 'no environment files'})")
    if folder.env.followed:
        lines.append(f"    from {folder.env.followed}: {folder.env.why}")
    for r in spec.requirements:
        where = (
            f"{r.location.file}:{r.location.line}" if r.location.line else (r.location.file or "")
        )
        lines.append(f"    {r.raw:<40} {where}")
    for c in spec.conda:
        lines.append(f"    conda {c.raw:<34} {c.location.file}:{c.location.line}")
    for o in spec.options:
        lines.append(f"    {o.option} {o.to_json()['value'] or ''}")
    if m.signature:
        lines.append("signature inputs")
        lines.extend(_schema(m.signature.inputs))
        lines.append("signature outputs")
        lines.extend(_schema(m.signature.outputs))
        if m.signature.params:
            lines.append("signature params")
            lines.extend(
                f"    {p.name}: {_type(p.type)} = {p.default!r}" for p in m.signature.params
            )
    if folder.input_example:
        ex = folder.input_example
        lines.append(f"input example {ex.file} ({ex.type or 'unknown type'})")
    return "\n".join(lines) + "\n"


def files_text(contents: Contents) -> str:
    """The files an image would carry: counts, then every file nothing in the MLmodel uses
    and every file left out, with its size and the rule."""
    total = sum(f.size for f in contents.included)
    lines = [f"files      {len(contents.included)} copied ({human_size(total)})"]
    if contents.unreferenced:
        lines.append("files nothing in the MLmodel uses (copied)")
        for f in contents.unreferenced:
            lines.append(f"    {f.path:<40} {human_size(f.size)}")
    if contents.excluded:
        lines.append("files left out of the image")
        for e in contents.excluded:
            lines.append(f"    {e.path:<40} {human_size(e.size):>9}  {e.rule}")
    for s in contents.allowed:
        lines.append(f"allowed    {s.path} (looks like a secret: {s.why}; --allow-file)")
    return "\n".join(lines) + "\n"

"""The library API: what each command does, callable from Python.

Every function takes a model folder or URI (``runs:/``, ``models:/``, an artifact URI) and
keyword options, and returns a frozen result whose ``to_json()`` is the ``result`` of the
command's JSON envelope, with its ``findings`` and ``exit_code``. Problems that stop a
command raise ``envbuild.errors.EnvbuildError`` (its ``exit_code`` says which kind). The
library never prints; progress goes to the ``envbuild`` logger.

One concern, six use cases: each section below is one command's orchestration of the
stage packages and its result type, which is why the module is long; the stages
themselves live in their packages.

    >>> from envbuild import api
    >>> shown = api.show("examples/sklearn-credit")
    >>> shown.folder.mlmodel.flavors[0].name
    'python_function'
"""

from __future__ import annotations

import logging
import os
import platform as _platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild._adapters import uv as _uv
from envbuild.build import BuiltImage, VenvResult, host_platform, lock_for
from envbuild.contents import Contents, select
from envbuild.errors import EnvbuildError, ExitCode, InputError
from envbuild.findings import Finding, Location, exit_code_for
from envbuild.infer import Inference
from envbuild.installed import InstalledEnv, start_inspect
from envbuild.output import canonical_command, header, write_atomic
from envbuild.read import ModelFolder, read_model, read_workspace_env
from envbuild.render import BuildPlan
from envbuild.resolve import (
    DEFAULT_PYTHON,
    LOCK_NAME,
    Lock,
    Target,
    parse_lock,
    resolve,
    target_for,
)
from envbuild.resolve.lock import EB340
from envbuild.safety import Verdict, require_safe
from envbuild.sources import ModelSource, materialize
from envbuild.versions import minor_of

log = logging.getLogger("envbuild")

__all__ = [
    "ImageResult",
    "InferResult",
    "LockResult",
    "ModelLocation",
    "ShowResult",
    "VenvBuildResult",
    "check",
    "image",
    "infer",
    "lock",
    "show",
    "venv",
]

ModelLocation = str | os.PathLike[str] | ModelSource


def _source(
    model: ModelLocation,
    *,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> ModelSource:
    if isinstance(model, ModelSource):
        return model
    return materialize(
        os.fspath(model), tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )


# --------------------------------------------------------------------------------------
# show


@dataclass(frozen=True, kw_only=True)
class ShowResult:
    source: ModelSource
    folder: ModelFolder
    files: Contents

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(self.folder.findings)

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.folder.to_json(),
            "files": self.files.to_json(),
            "source": self.source.provenance(),
        }


def show(
    model: ModelLocation,
    *,
    exclude: Sequence[str] = (),
    allow_files: Sequence[str] = (),
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> ShowResult:
    """What envbuild reads from ``model`` (nothing is loaded or run), and which of its
    files an image would carry."""
    source = _source(
        model, tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )
    folder = read_model(source.path)
    return ShowResult(
        source=source,
        folder=folder,
        files=select(folder, exclude=exclude, allow_files=allow_files),
    )


# --------------------------------------------------------------------------------------
# lock


@dataclass(frozen=True, kw_only=True)
class LockResult:
    source: ModelSource
    folder: ModelFolder
    target: Target
    lock: Lock | None  # None when resolution failed (the findings say why)
    path: Path  # where the lock is (or would be) written
    written: bool
    stale: bool | None  # with check=True: whether the existing lock differs
    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        return int(ExitCode.FINDINGS) if self.lock is None else exit_code_for(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": str(self.folder.path),
            "source": self.source.provenance(),
            "target": self.target.to_json(),
            "lock_file": str(self.path),
            "written": self.written,
            "stale": self.stale,
            "lock": self.lock.to_json() if self.lock else None,
        }


def _stale(old: str | None, new: str, path: Path) -> Finding | None:
    if old == new:
        return None
    if old is None:
        what = "it does not exist"
    else:
        before, after = parse_lock(old), parse_lock(new)
        changes = [
            f"{n} {before.get(n, '-')} -> {after.get(n, '-')}"
            for n in sorted(set(before) | set(after))
            if before.get(n) != after.get(n)
        ]
        what = (
            "pins change: " + ", ".join(changes[:8]) + (" ..." if len(changes) > 8 else "")
            if changes
            else "the header, options or hashes differ"
        )
    return EB340.at(
        Location(file=str(path)),
        f"{path.name} is stale: {what}",
        hint="run envbuild lock again (without --check) and commit the result",
    )


def lock(
    model: ModelLocation,
    *,
    python_version: str | None = None,
    platform: str = "linux/amd64",
    output: Path | None = None,
    dry_run: bool = False,
    check: bool = False,
    find_links: Sequence[Path] = (),
    offline: bool = False,
    env_override: Path | None = None,
    serving: bool = True,
    exclude_newer: str | None = None,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> LockResult:
    """Resolve ``model``'s environment for the target Python and platform (uv) and write
    ``requirements.lock`` (or ``output``); ``check`` compares with the existing lock
    instead (EB340 when stale), ``dry_run`` writes nothing."""
    if dry_run and check:
        raise InputError(
            "--dry-run and --check cannot be combined",
            hint="--check already writes nothing",
            location=Location(field="--check"),
        )
    source = _source(
        model, tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )
    if output is None and not (dry_run or check):
        source.require_local(
            "writing requirements.lock", hint="pass --output FILE (or --dry-run, --check)"
        )
    folder = read_model(source.path)
    findings: list[Finding] = list(folder.findings)
    override = read_workspace_env(env_override) if env_override else None
    spec = override.spec if override else None
    if python_version is None and spec is not None and spec.python is not None:
        python_version = spec.python.version
    target, target_findings = target_for(
        folder, python_version=python_version, platform=platform, env=spec
    )
    findings.extend(target_findings)
    # the header names the target and a canonical command, not the caller's spelling
    canonical = canonical_command(
        "envbuild lock",
        folder.path.resolve().name,
        ("--python-version", str(target.python)),
        ("--platform", target.platform),
        ("--env-override", env_override.name if env_override else None),
        ("--no-serving", not serving),
        ("--exclude-newer", exclude_newer),
    )
    resolution = resolve(
        folder,
        target,
        override=override,
        find_links=find_links,
        offline=offline,
        include_serving=serving,
        command=canonical,
        exclude_newer=exclude_newer,
    )
    findings.extend(resolution.findings)
    path = output or folder.path / LOCK_NAME
    written = False
    stale: bool | None = None
    locked = resolution.lock
    if locked is not None and check:
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        problem = _stale(old, locked.text, path)
        stale = problem is not None
        if problem:
            findings.append(problem)
    elif locked is not None and not dry_run:
        write_atomic(path, locked.text)
        written = True
    return LockResult(
        source=source,
        folder=folder,
        target=target,
        lock=locked,
        path=path,
        written=written,
        stale=stale,
        findings=tuple(findings),
    )


# --------------------------------------------------------------------------------------
# infer


@dataclass(frozen=True, kw_only=True)
class InferResult:
    source: ModelSource
    folder: ModelFolder
    inference: Inference
    files: dict[str, str]  # file name -> rendered text (empty with explain/check)
    written: tuple[str, ...]
    dry_run: bool
    explain: dict[str, Any] | None
    drift: tuple[Finding, ...] | None  # with check=True: the differences
    safety: Verdict | None  # with trace=True
    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        return 0 if self.explain is not None else exit_code_for(self.findings)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "model": str(self.folder.path),
            "source": self.source.provenance(),
            **self.inference.to_json(),
        }
        if self.explain is not None:
            doc["explain"] = self.explain
        elif self.drift is not None:
            doc["check"] = {"ok": not self.drift, "differences": [f.to_json() for f in self.drift]}
        else:
            doc["files"] = self.files
            doc["written"] = list(self.written)
        return doc


def _env_targets(folder: ModelFolder) -> dict[str, str]:
    """kind -> file name inside the folder, as the MLmodel names them."""
    pyfunc = folder.mlmodel.pyfunc
    conda = (pyfunc.env_conda if pyfunc else None) or "conda.yaml"
    venv = (pyfunc.env_virtualenv if pyfunc else None) or "python_env.yaml"
    return {"conda": conda, "virtualenv": venv, "requirements": "requirements.txt"}


def infer(
    model: ModelLocation,
    *,
    python: str | None = None,
    dry_run: bool = False,
    check: bool = False,
    force: bool = False,
    prune: bool = True,
    explain: str | None = None,
    trace: bool = False,
    trust_model: bool = False,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> InferResult:
    """Infer the environment ``model`` needs from the training environment (``python``,
    default this interpreter) and write its conda.yaml, python_env.yaml and
    requirements.txt; ``check`` compares instead, ``explain`` says why one package is
    (not) required, ``trace`` loads the model (refused when the scan calls it unsafe)."""
    from envbuild._paths import inside
    from envbuild.infer import check_drift, merge_existing, run_trace
    from envbuild.infer import infer as infer_env
    from envbuild.write import render_conda_yaml, render_python_env, render_requirements

    source = _source(
        model, tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )
    if not (check or dry_run or explain is not None):
        source.require_local(
            "writing the environment files", hint="use --check or --dry-run with a URI"
        )
    pending = start_inspect(python)  # runs while the model is read and scanned
    folder = read_model(source.path)
    traced = None
    verdict = None
    env: InstalledEnv | Callable[[], InstalledEnv] = pending
    if trace:
        # --trace loads the model: the static verdict comes first, on the inspected Python.
        env = pending()
        verdict = require_safe(
            folder,
            command="envbuild infer --trace",
            target_python=env.python_version,
            trusted=trust_model,
        )
        traced = run_trace(python or sys.executable, folder.path)
    inf = infer_env(folder, env, prune=prune, trace=traced)
    findings: list[Finding] = [*folder.findings, *inf.findings]
    if verdict is not None:
        findings.extend(verdict.notices)
    files: dict[str, str] = {}
    written: list[str] = []
    drift: tuple[Finding, ...] | None = None
    explained = inf.explain(explain) if explain is not None else None
    if explained is None and check:
        drift = tuple(check_drift(inf, folder))
        findings.extend(drift)
    elif explained is None:
        invocation = canonical_command(
            "envbuild infer",
            source.uri,
            ("--python", python),
            ("--no-prune", not prune),
            ("--trace", trace),
        )
        spec = inf.spec if force else merge_existing(inf.spec, folder)
        names = _env_targets(folder)
        head = header(invocation)
        files = {
            names["conda"]: render_conda_yaml(spec, head),
            names["virtualenv"]: render_python_env(
                spec, head, requirements_file="requirements.txt"
            ),
            names["requirements"]: render_requirements(spec, head),
        }
        if not dry_run:
            for name, text in files.items():
                write_atomic(inside(folder.path, name, location=Location(file=name)), text)
                written.append(name)
    return InferResult(
        source=source,
        folder=folder,
        inference=inf,
        files=files,
        written=tuple(written),
        dry_run=dry_run,
        explain=explained,
        drift=drift,
        safety=verdict,
        findings=tuple(findings),
    )


# --------------------------------------------------------------------------------------
# check


def check(
    models: Sequence[ModelLocation],
    *,
    ignore: Sequence[str] = (),
    strict: bool = False,
    offline: bool = False,
    python_version: str | None = None,
    platform: str = "linux/amd64",
    env_override: Path | None = None,
    find_links: Sequence[Path] = (),
    exclude: Sequence[str] = (),
    allow_files: Sequence[str] = (),
    tracking_uri: str | None = None,
    jobs: int = 0,
) -> Any:
    """The pre-deploy check of every model in ``models`` (in parallel): an
    ``envbuild.check.Report`` whose ``exit_code`` a pipeline can trust."""
    from envbuild.check import run_check
    from envbuild.check.settings import options_from
    from envbuild.check.stages import STAGES

    options = options_from(
        {},
        ignore=tuple(ignore),
        strict=strict,
        offline=offline,
        python_version=python_version,
        platform=platform,
        env_override=env_override,
        find_links=tuple(find_links),
        exclude=tuple(exclude),
        allow_files=tuple(allow_files),
        tracking_uri=tracking_uri,
    )
    locations = [m.uri if isinstance(m, ModelSource) else os.fspath(m) for m in models]
    return run_check(locations, options, STAGES, jobs=jobs)


# --------------------------------------------------------------------------------------
# image


@dataclass(frozen=True, kw_only=True)
class ImageResult:
    source: ModelSource
    folder: ModelFolder
    safety: Verdict
    lock: Lock | None  # None when resolution failed (the findings say why)
    plan: BuildPlan | None
    output: Path | None  # with output=: where the build context was written
    image: BuiltImage | None  # None unless built
    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        return int(ExitCode.FINDINGS) if self.lock is None else exit_code_for(self.findings)

    def to_json(self) -> dict[str, Any] | None:
        if self.plan is None:
            return None
        doc: dict[str, Any] = {
            "plan": self.plan.to_json(),
            "source": self.source.provenance(),
            "safety": self.safety.to_json(),
        }
        if self.output is not None:
            doc["output"] = str(self.output)
        elif self.image is None:
            doc["dockerfile"] = self.plan.dockerfile
        else:
            doc["image"] = self.image.to_json()
            if self.image.smoke is not None:
                doc["smoke"] = self.image.smoke.to_json()
        return doc


def _host_uv(target_platform: str) -> Path | None:
    """The host's uv binary goes into the context when it runs on the target platform;
    otherwise the build installs uv with pip."""
    if target_platform != host_platform() or _platform.system() != "Linux":
        return None
    return Path(_uv.uv_bin())


def _read_lock_file(
    path: Path | None, *, python_version: str | None, platform: str | None
) -> Lock | None:
    """The lock ``image --lock`` builds from; its target must be the one asked for."""
    if path is None:
        return None
    from envbuild.resolve.lock import read_lock

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read the lock: {exc}",
            hint="name a requirements.lock written by `envbuild lock`",
            location=Location(file=str(path)),
        ) from None
    given = read_lock(text, file=str(path))
    if python_version and minor_of(python_version) != minor_of(given.python_version):
        raise InputError(
            f"{path} is locked for Python {given.python_version}, not {python_version}",
            hint="lock again with `envbuild lock --python-version`, or drop --python-version",
            location=Location(file=str(path), line=2),
        )
    if platform and platform != given.platform:
        raise InputError(
            f"{path} is locked for {given.platform}, not {platform}",
            hint="lock again with `envbuild lock --platform`, or drop --platform",
            location=Location(file=str(path), line=2),
        )
    return given


def image(
    model: ModelLocation,
    *,
    tags: Sequence[str] = (),
    output: Path | None = None,
    build: bool = True,
    base_image: str | None = None,
    python_version: str | None = None,
    platform: str | None = None,
    env_override: Path | None = None,
    find_links: Sequence[Path] = (),
    lock_file: Path | None = None,
    wheelhouse: bool = False,
    network_mode: str | None = None,
    smoke: bool = True,
    keep_failed: bool = False,
    trust_model: bool = False,
    exclude: Sequence[str] = (),
    allow_files: Sequence[str] = (),
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> ImageResult:
    """Lock ``model``'s environment, render its Dockerfile and (unless ``output`` is given
    or ``build`` is false) build the image, prove it in a sandboxed container and only then
    apply ``tags``. ``lock_file`` (written by ``envbuild lock``) is built as it is, with no
    resolution: what CI locked is what gets built. A model the static scan calls unsafe is
    refused first (EB510)."""
    from envbuild._adapters import docker as _docker
    from envbuild._adapters.uv import uv_requirement
    from envbuild.build import build_image, download_wheelhouse, write_context
    from envbuild.render import render

    for name in tags:
        _docker.check_tag(name)
    building = output is None and build
    client: Any = _docker.client() if building else None  # no engine: exit 3 before work
    source = _source(
        model, tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )
    folder = read_model(source.path)
    findings: list[Finding] = list(folder.findings)
    override = read_workspace_env(env_override) if env_override else None
    given = _read_lock_file(lock_file, python_version=python_version, platform=platform)
    target_platform = given.platform if given else (platform or host_platform())
    # Before anything is resolved, rendered or built: an image exists to load the model.
    target = (
        given.target
        if given
        else target_for(
            folder,
            python_version=python_version,
            platform=target_platform,
            env=override.spec if override is not None else None,
        )[0]
    )
    verdict = require_safe(
        folder,
        command="envbuild image",
        target_python=f"{target.python.major}.{target.python.minor}",
        trusted=trust_model,
    )
    findings.extend(verdict.notices)
    labels = source.labels()
    if trust_model:
        labels["io.envbuild.trust-model"] = "true"
    if given is not None:
        locked: Lock | None = given
    else:
        resolution_findings, locked = lock_for(
            folder,
            python_version=python_version,
            platform=target_platform,
            override=override,
            find_links=find_links,
        )
        findings.extend(resolution_findings)
    if locked is None:
        return ImageResult(
            source=source,
            folder=folder,
            safety=verdict,
            lock=None,
            plan=None,
            output=None,
            image=None,
            findings=tuple(findings),
        )
    canonical = canonical_command(
        "envbuild image",
        source.path.resolve().name if source.kind in ("local", "file") else source.uri,
        ("-t", list(tags)),
        ("--python-version", locked.python_version),
        ("--platform", locked.platform),
        ("--base-image", base_image),
        ("--env-override", env_override.name if env_override else None),
        ("--find-links", [p.name for p in find_links]),
        ("--lock", lock_file.name if lock_file else None),
        ("--wheelhouse", wheelhouse),
        ("--network", network_mode),
        ("--exclude", list(exclude)),
        ("--allow-file", list(allow_files)),
        ("--trust-model", trust_model),
    )
    built: BuiltImage | None = None
    with tempfile.TemporaryDirectory(prefix="envbuild-wheels-") as tmp:
        wheels = download_wheelhouse(locked, Path(tmp)) if wheelhouse else []
        plan = render(
            folder,
            locked,
            command=canonical,
            tag=tags[0] if tags else None,
            base_image=base_image,
            override=override,
            wheelhouse=wheels,
            buildkit=building and _docker.buildkit_available(),
            uv_binary=_host_uv(target_platform),
            uv_requirement=uv_requirement(),
            source=None,
            model_labels=labels,
            exclude=exclude,
            allow_files=allow_files,
        )
        findings.extend(plan.findings)
        if output is not None:
            write_context(plan, output)
        elif building:
            if not plan.buildable:  # said before a build that may take minutes
                for finding in plan.findings:
                    log.warning("%s %s", finding.code, finding.one_line())
            try:
                built = build_image(
                    plan,
                    folder,
                    tags=tuple(tags),
                    smoke=smoke,
                    keep_failed=keep_failed,
                    client=client,
                    network_mode=network_mode,
                )
            except EnvbuildError as exc:
                raise exc.after(findings) from None
    return ImageResult(
        source=source,
        folder=folder,
        safety=verdict,
        lock=locked,
        plan=plan,
        output=output,
        image=built,
        findings=tuple(findings),
    )


# --------------------------------------------------------------------------------------
# venv


@dataclass(frozen=True, kw_only=True)
class VenvBuildResult:
    source: ModelSource
    folder: ModelFolder
    safety: Verdict
    venv: VenvResult | None  # None when resolution failed (the findings say why)
    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        return int(ExitCode.FINDINGS) if self.venv is None else exit_code_for(self.findings)

    def to_json(self) -> dict[str, Any] | None:
        if self.venv is None:
            return None
        return {**self.venv.to_json(), "source": self.source.provenance()}


def _inputs_digest(folder: ModelFolder, python: Path, xy: str, find_links: Sequence[Path]) -> str:
    """What the lock depends on: the model's environment files, the interpreter and
    envbuild itself. Unchanged inputs let a re-run skip the resolver and the install."""
    import hashlib

    from envbuild import __version__
    from envbuild.render import server_files, server_sha256

    h = hashlib.sha256(f"{__version__}\0{python.resolve()}\0{xy}\0{host_platform()}\n".encode())
    for link in find_links:
        h.update(f"{link.resolve()}\n".encode())
    for name in sorted({*folder.env.spec.files, "MLmodel"}):
        path = folder.path / name
        if path.is_file():
            h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(server_sha256(server_files()).encode())
    return h.hexdigest()


def venv(
    model: ModelLocation,
    *,
    path: Path,
    python: str | None = None,
    find_links: Sequence[Path] = (),
    smoke: bool = True,
    trust_model: bool = False,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
) -> VenvBuildResult:
    """Create a virtualenv at ``path`` with ``model``'s locked environment, the serving
    stack and envbuild's server, and prove it in a sandbox; an unchanged model only checks
    the stamp file. A model the static scan calls unsafe is refused first (EB510)."""
    from envbuild.build import (
        find_python,
        install_venv,
        model_fingerprint,
        read_stamp,
        smoke_venv,
        stamp_matches,
        write_stamp,
    )

    start = time.monotonic()
    source = _source(
        model, tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )
    folder = read_model(source.path)
    findings: list[Finding] = list(folder.findings)
    model_xy = ".".join((folder.python_version or DEFAULT_PYTHON).split(".")[:2])
    exe, xy = find_python(python, model_xy)
    # Before the venv is created: a venv exists to load the model, and its proof does.
    verdict = require_safe(folder, command="envbuild venv", target_python=xy, trusted=trust_model)
    findings.extend(verdict.notices)

    def done(result: VenvResult | None) -> VenvBuildResult:
        return VenvBuildResult(
            source=source, folder=folder, safety=verdict, venv=result, findings=tuple(findings)
        )

    inputs = _inputs_digest(folder, exe, xy, find_links)
    want = {"inputs": inputs, "model": model_fingerprint(folder.path), "smoke": smoke}
    if stamp_matches(path, want):
        stamp = read_stamp(path) or {}
        return done(
            VenvResult(
                path=path,
                python=xy,
                lock_sha256=str(stamp.get("lock_sha256")),
                reused=True,
                seconds=time.monotonic() - start,
                smoke=None,
            )
        )
    stamp = read_stamp(path) or {}
    if stamp.get("inputs") == inputs and (path / "bin" / "python").exists():
        lock_sha = str(stamp.get("lock_sha256"))  # same environment: only the model changed
    else:
        resolved, locked = lock_for(
            folder,
            python_version=xy,
            platform=host_platform(),
            find_links=find_links,
            command="envbuild venv",
        )
        findings.extend(resolved)
        if locked is None:
            return done(None)
        install_venv(locked, path, python=exe)
        lock_sha = locked.sha256
    smoked = smoke_venv(path, folder) if smoke else None
    write_stamp(path, {**want, "lock_sha256": lock_sha, "python": xy})
    return done(
        VenvResult(
            path=path,
            python=xy,
            lock_sha256=lock_sha,
            reused=False,
            seconds=time.monotonic() - start,
            smoke=smoked,
        )
    )

"""``envbuild image``: the command's orchestration of the stages and its result type."""

from __future__ import annotations

import os
import platform as _platform
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from envbuild._adapters import uv as _uv
from envbuild.api._common import ModelLocation, _source, log
from envbuild.build import BuiltImage, host_platform, lock_for
from envbuild.credentials import collect, read_secret_path
from envbuild.errors import EnvbuildError, ExitCode, InputError
from envbuild.findings import Finding, Location, exit_code_for
from envbuild.output import canonical_command
from envbuild.read import ModelFolder, read_model, read_workspace_env
from envbuild.render import BuildPlan
from envbuild.render.source import refuse_source_builds
from envbuild.resolve import (
    Lock,
    MlflowChoice,
    TorchChoice,
    source_build_findings,
    source_builds,
    target_for,
)
from envbuild.safety import Verdict, require_safe
from envbuild.sources import ModelSource
from envbuild.versions import minor_of


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
    from envbuild.read._common import read_given_file
    from envbuild.resolve.lock import read_lock

    text = read_given_file(
        path, what="the lock", hint="name a requirements.lock written by `envbuild lock`"
    )
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
    env_from: str = "auto",
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
    wheels_only: bool = False,
    network_mode: str | None = None,
    smoke: bool = True,
    keep_failed: bool = False,
    trust_model: bool = False,
    exclude: Sequence[str] = (),
    allow_files: Sequence[str] = (),
    gpu: bool = False,
    mlflow: MlflowChoice = "skinny",
    torch: TorchChoice = "default",
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    cache_dir: Path | None = None,
    builder: str = "auto",
    push: bool = False,
    secret_file: Path | None = None,
) -> ImageResult:
    """Lock ``model``'s environment, render its Dockerfile and (unless ``output`` is given
    or ``build`` is false) build the image, prove it in a sandboxed container and only then
    apply ``tags``. ``lock_file`` (written by ``envbuild lock``) is built as it is, with no
    resolution: what CI locked is what gets built. A model the static scan calls unsafe is
    refused first (EB510). Pins with no wheel for the target are compiled in a throwaway
    builder stage, or with ``wheels_only`` refused before anything is built (EB411). The base is ``python:X.Y-slim`` (PyPI's CUDA wheels carry their
    own libraries); ``gpu`` renders NVIDIA's CUDA runtime base. ``mlflow`` and ``torch``
    shape the resolution as in :func:`lock`. ``builder`` (auto, buildkit, legacy) picks how
    the image is built; index credentials (env files, ``secret_file``, UV_INDEX_*/PIP_INDEX_URL)
    reach only a BuildKit build, as secrets. ``push`` pushes every tag once the proof passed."""

    from envbuild._adapters import buildkit as _buildkit
    from envbuild._adapters import docker as _docker
    from envbuild._adapters.uv import uv_requirement
    from envbuild.build import build_image, download_wheelhouse, write_context
    from envbuild.render import render

    for name in tags:
        _docker.check_tag(name)
    if push and not tags:
        raise InputError(
            "--push needs a name to push: give -t REGISTRY/NAME:TAG",
            location=Location(field="--push"),
        )
    building = output is None and build
    if push and not building:
        raise InputError(
            "--push builds the image: drop --output or --no-build",
            location=Location(field="--push"),
        )
    chosen = _buildkit.Builder(builder)
    secret_urls = read_secret_path(secret_file)
    client: Any = _docker.client() if building else None  # no engine: exit 3 before work
    kit = _buildkit.choose(chosen) if building else None
    source = _source(
        model, tracking_uri=tracking_uri, registry_uri=registry_uri, cache_dir=cache_dir
    )
    folder = read_model(source.path, env_from=env_from)
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
        # a lock file says nothing of wheels: ask uv, as resolve() does for a fresh lock
        checked = replace(given, source_builds=source_builds(given))
        findings.extend(source_build_findings(checked, {}, file=str(lock_file)))
        locked: Lock | None = checked
    else:
        resolution_findings, locked = lock_for(
            folder,
            python_version=python_version,
            platform=target_platform,
            override=override,
            find_links=find_links,
            mlflow=mlflow,
            torch=torch,
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
    if locked.source_builds and (wheels_only or wheelhouse):  # before any download or build
        why = (
            "--wheels-only forbids building from source"
            if wheels_only
            else "--wheelhouse installs downloaded wheels only"
        )
        raise refuse_source_builds(locked, why).after(findings)
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
        ("--wheels-only", wheels_only),
        ("--network", network_mode),
        ("--exclude", list(exclude)),
        ("--allow-file", list(allow_files)),
        ("--trust-model", trust_model),
        ("--gpu", gpu),
        ("--mlflow", mlflow if mlflow != "skinny" and given is None else None),
        ("--torch", torch if torch != "default" and given is None else None),
    )
    built: BuiltImage | None = None
    with tempfile.TemporaryDirectory(prefix="envbuild-wheels-") as tmp:
        wheels = download_wheelhouse(locked, Path(tmp)) if wheelhouse else []

        def render_for(kit: _buildkit.BuildKitCli | None) -> BuildPlan:
            return render(
                folder,
                locked,
                command=canonical,
                tag=tags[0] if tags else None,
                base_image=base_image,
                override=override,
                wheelhouse=wheels,
                buildkit=kit is not None if building else chosen is _buildkit.Builder.BUILDKIT,
                uv_binary=_host_uv(target_platform),
                uv_requirement=uv_requirement(),
                source=None,
                model_labels=labels,
                exclude=exclude,
                allow_files=allow_files,
                gpu=gpu,
                credentials=collect(
                    (o.value for o in locked.options if o.value), os.environ, secret_urls
                ),
            )

        plan = render_for(kit)
        if (
            kit is not None
            and chosen is _buildkit.Builder.AUTO
            and _docker.only_here_for(client, plan.base_image, target_platform)
        ):
            # BuildKit in the engine looks a base of another platform up in its registry
            log.info(
                "builder: the classic builder, since %s (%s) exists only in this engine and "
                "BuildKit resolves a base of another platform from its registry",
                plan.base_image,
                target_platform,
            )
            kit = None
            plan = render_for(kit)
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
                    buildkit=kit,
                    push=push,
                )
            except EnvbuildError as exc:
                raise exc.after(findings) from None
            refused = built.smoke.refusal_finding() if built.smoke is not None else None
            if refused is not None:
                findings.append(refused)
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

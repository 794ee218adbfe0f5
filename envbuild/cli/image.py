"""envbuild image MODEL -t NAME[:TAG]"""

from __future__ import annotations

from pathlib import Path

import click

from envbuild import api
from envbuild.cli import main
from envbuild.cli.common import (
    EXIT_CODES_HELP,
    allow_file_option,
    common,
    env_from_option,
    env_override_option,
    exclude_option,
    find_links_option,
    mlflow_option,
    model_argument,
    platform_option,
    present,
    python_version_option,
    torch_option,
    trust_model_option,
)
from envbuild.contents import human_size
from envbuild.resolve import MlflowChoice, TorchChoice
from envbuild.sources import ModelSource


@main.command(epilog=EXIT_CODES_HELP)
@click.option(
    "-t",
    "--tag",
    "tags",
    multiple=True,
    help="Image name[:tag], applied once the smoke test passed; repeatable.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the build context (Dockerfile, lock, server, model) to DIR and stop.",
)
@click.option("--no-build", is_flag=True, help="Render only: print the Dockerfile.")
@click.option("--base-image", help="Base image instead of python:X.Y-slim.")
@click.option(
    "--gpu",
    is_flag=True,
    help="Base on NVIDIA's CUDA runtime image (default: python:X.Y-slim, which serves PyPI's "
    "CUDA wheels under the NVIDIA container runtime too).",
)
@python_version_option
@platform_option(None, "this machine's")
@env_override_option
@find_links_option
@click.option(
    "--lock",
    "lock_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Build from this requirements.lock (written by `envbuild lock`) without resolving: "
    "what CI locked is what gets built.",
)
@click.option(
    "--wheelhouse",
    is_flag=True,
    help="Download every locked wheel here and install with --no-index (no network in the build).",
)
@click.option(
    "--wheels-only",
    is_flag=True,
    help="Refuse, before building, when a locked package has no wheel for the target "
    "(default: compile it in a throwaway builder stage; no compiler reaches the image).",
)
@click.option(
    "--network",
    "network_mode",
    help="Network for the build's RUN steps (e.g. none, to prove a --wheelhouse build "
    "needs no network).",
)
@click.option(
    "--builder",
    type=click.Choice(["auto", "buildkit", "legacy"]),
    default="auto",
    show_default=True,
    help="BuildKit (through a Docker CLI that has it: cache mounts, secrets) or the "
    "engine's classic builder; auto asks the engine.",
)
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Index URLs with credentials, one a line, for the indexes the lock names; passed "
    "to the build as BuildKit secrets (never into a layer).",
)
@click.option(
    "--push",
    is_flag=True,
    help="Push every -t name to its registry once the smoke test passed (the Docker "
    "client's credentials); the digest goes in the report.",
)
@click.option(
    "--smoke/--no-smoke",
    default=True,
    show_default=True,
    help="Run the image (sandboxed) and check a prediction on the input example, then tag it.",
)
@click.option(
    "--keep-failed",
    is_flag=True,
    help="Keep an image whose smoke test fails, as NAME:TAG-failed (default: remove it).",
)
@mlflow_option("skinny")
@torch_option("default")
@trust_model_option
@exclude_option
@allow_file_option
@env_from_option
@common
@model_argument
def image(
    model: ModelSource,
    env_from: str | None,
    tags: tuple[str, ...],
    output: Path | None,
    no_build: bool,
    base_image: str | None,
    gpu: bool,
    python_version: str | None,
    target_platform: str | None,
    env_override: Path | None,
    find_links: tuple[Path, ...],
    lock_file: Path | None,
    wheelhouse: bool,
    wheels_only: bool,
    network_mode: str | None,
    builder: str,
    secret_file: Path | None,
    push: bool,
    smoke: bool,
    keep_failed: bool,
    mlflow: MlflowChoice,
    torch: TorchChoice,
    trust_model: bool,
    exclude: tuple[str, ...],
    allow_files: tuple[str, ...],
    fmt: str,
    command: str,
) -> None:
    """Build a Docker image that serves MODEL (MLflow scoring protocol on port 8080), from
    its locked environment, prove it with a prediction on the input example in a sandboxed
    container (no network, read-only, any uid), and only then give it the -t names.

    Progress goes to stderr; stdout gets the image id and size (or the Dockerfile with
    --no-build)."""
    result = api.image(
        model,
        env_from=env_from or "auto",
        tags=tags,
        output=output,
        build=not no_build,
        base_image=base_image,
        python_version=python_version,
        platform=target_platform,
        env_override=env_override,
        find_links=find_links,
        lock_file=lock_file,
        wheelhouse=wheelhouse,
        wheels_only=wheels_only,
        network_mode=network_mode,
        builder=builder,
        secret_file=secret_file,
        push=push,
        smoke=smoke,
        keep_failed=keep_failed,
        trust_model=trust_model,
        exclude=exclude,
        allow_files=allow_files,
        gpu=gpu,
        mlflow=mlflow,
        torch=torch,
    )
    present(result, fmt=fmt, command=command, text=_text(result, tags))


def _text(result: api.ImageResult, tags: tuple[str, ...]) -> str:
    if result.plan is None:
        return ""
    if result.output is not None:
        return f"wrote the build context to {result.output} ({len(result.plan.files)} files)\n"
    built = result.image
    if built is None:
        return result.plan.dockerfile
    named = f" ({', '.join(tags)})" if tags else ""
    text = f"image {built.id}{named}  size {human_size(built.size)}\n"
    if built.smoke is not None:
        text += f"smoke ok ({built.smoke.proof}, sandboxed container): {built.smoke.message}\n"
    else:
        text += "not proven: built with --no-smoke\n"
    for name, digest in built.pushed:
        text += f"pushed {name}@{digest}\n"
    return text

"""``[tool.envbuild]`` in the nearest pyproject.toml, and its merge with the command line
(an option given on the command line wins; an unknown key is EB130)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envbuild._compat import tomllib
from envbuild.check.report import CheckOptions
from envbuild.credentials import read_secret_path
from envbuild.errors import InputError
from envbuild.findings import Location
from envbuild.resolve.stack import TORCH_CHOICES, TorchChoice
from envbuild.serving import MLFLOW_CHOICES, MlflowChoice

SETTINGS_KEYS = {
    "ignore": list,
    "strict": bool,
    "offline": bool,
    "python-version": str,
    "platform": str,
    "env-override": str,
    "find-links": list,
    "format": str,
    "exclude": list,
    "allow-file": list,
    "env-from": str,
    "mlflow": str,
    "torch": str,
}
# settings whose value is one of a few words
SETTINGS_CHOICES: dict[str, tuple[str, ...]] = {"mlflow": MLFLOW_CHOICES, "torch": TORCH_CHOICES}


def load_settings(start: Path) -> tuple[dict[str, Any], Path | None]:
    """``[tool.envbuild]`` from the nearest pyproject.toml at or above ``start``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise InputError(
                    f"not valid TOML: {exc}",
                    hint="fix pyproject.toml",
                    location=Location(file=str(candidate)),
                    code="EB130",
                ) from None
            table = data.get("tool", {}).get("envbuild")
            if table is None:
                return {}, candidate
            if not isinstance(table, dict):
                raise InputError(
                    "[tool.envbuild] must be a table",
                    location=Location(file=str(candidate), field="tool.envbuild"),
                    code="EB130",
                )
            for key, value in table.items():
                kind = SETTINGS_KEYS.get(key)
                if kind is None:
                    raise InputError(
                        f"unknown setting {key!r}",
                        hint="known settings: " + ", ".join(sorted(SETTINGS_KEYS)),
                        location=Location(file=str(candidate), field=f"tool.envbuild.{key}"),
                        code="EB130",
                    )
                if not isinstance(value, kind):
                    raise InputError(
                        f"setting {key!r} must be a {kind.__name__}",
                        location=Location(file=str(candidate), field=f"tool.envbuild.{key}"),
                        code="EB130",
                    )
                choices = SETTINGS_CHOICES.get(key)
                if choices is not None and value not in choices:
                    raise InputError(
                        f"setting {key!r} must be one of " + ", ".join(choices),
                        location=Location(file=str(candidate), field=f"tool.envbuild.{key}"),
                        code="EB130",
                    )
            return table, candidate
    return {}, None


def options_from(
    settings: dict[str, Any],
    *,
    ignore: tuple[str, ...] = (),
    strict: bool | None = None,
    offline: bool | None = None,
    python_version: str | None = None,
    platform: str | None = None,
    env_override: Path | None = None,
    find_links: tuple[Path, ...] = (),
    exclude: tuple[str, ...] = (),
    allow_files: tuple[str, ...] = (),
    tracking_uri: str | None = None,
    env_from: str | None = None,
    mlflow: MlflowChoice | None = None,
    torch: TorchChoice | None = None,
    secret_file: Path | None = None,
) -> CheckOptions:
    """The options a check runs with: what the command line gives, else the settings.
    Ignored codes, excludes and allowed files add up; ``EB3xx,EB501`` splits on commas."""
    codes = {
        c.strip().upper()
        for item in (*settings.get("ignore", []), *ignore)
        for c in str(item).split(",")
        if c.strip()
    }
    override = env_override or (
        Path(settings["env-override"]) if settings.get("env-override") else None
    )
    return CheckOptions(
        ignore=frozenset(codes),
        strict=bool(settings.get("strict", False) if strict is None else strict),
        offline=bool(settings.get("offline", False) if offline is None else offline),
        python_version=python_version or settings.get("python-version"),
        platform=platform or settings.get("platform", "linux/amd64"),
        env_override=override,
        find_links=find_links or tuple(Path(p) for p in settings.get("find-links", [])),
        tracking_uri=tracking_uri,
        exclude=(*(str(p) for p in settings.get("exclude", [])), *exclude),
        allow_files=(*(str(p) for p in settings.get("allow-file", [])), *allow_files),
        env_from=env_from or settings.get("env-from", "auto"),
        mlflow=mlflow or settings.get("mlflow", "skinny"),
        torch=torch or settings.get("torch", "default"),
        secret_urls=read_secret_path(secret_file),
    )

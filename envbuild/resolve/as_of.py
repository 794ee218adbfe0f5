"""A model folder without environment files (EB108): its environment is derived from the
MLmodel's flavors, where only the flavor's own library has a version (xgboost's
xgb_version) and the rest (scikit-learn for xgboost's sklearn API, numpy, ...) is
unpinned. Resolved against today's index, those take releases years newer than the model,
which its library may not work with: found on a public MLflow 2.20.3 xgboost folder saved
2025-03-11 (no environment files), where check said ok and the load failed under
scikit-learn 1.9 (xgboost 2.1.4's XGBRegressor: "`_estimator_type` undefined").

Such a resolution takes the index as it was when MLflow saved the model (MLmodel's
utc_time_created, uv's --exclude-newer), as a training environment of that day would
have had it (EB324). An explicit --exclude-newer, or any environment file, decides.
"""

from __future__ import annotations

from datetime import datetime, timezone

from envbuild.findings import Code, Finding, Location, Severity, table
from envbuild.read import ModelFolder

EB324 = Code(
    "EB324",
    Severity.INFO,
    "an environment derived from the MLmodel is resolved against the index as of the "
    "model's save date",
)
CODES: dict[str, str] = table(EB324)


def saved_at(folder: ModelFolder) -> str | None:
    """MLmodel's utc_time_created as RFC 3339 (UTC), or None when absent or unreadable."""
    raw = folder.mlmodel.utc_time_created
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw.strip().replace(" ", "T"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def derived_as_of(folder: ModelFolder) -> tuple[str | None, Finding | None]:
    """The date to resolve a derived environment at, and the finding that says so."""
    if folder.env.followed != "MLmodel":
        return None, None
    when = saved_at(folder)
    if when is None:
        return None, None
    return when, EB324.at(
        Location(file="MLmodel", field="utc_time_created"),
        f"no environment file: the unpinned packages derived from the flavors take the "
        f"releases of {when} (the model's save date), not today's",
        hint="write the environment files (envbuild infer where the model was trained), "
        "or pass --exclude-newer to choose another date",
    )

"""Server settings, read from environment variables (the container's interface).

Every variable is optional; a bad value stops the server at start with one line naming the
variable. ``MLFLOW_MODELS_WORKERS`` and ``MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT`` are
honoured as fallbacks so deployments written for ``mlflow models serve`` keep their tuning.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

# name -> (default, meaning); the README and the builder read this table.
ENV_VARS: dict[str, tuple[str, str]] = {
    "ENVBUILD_NSS_WRAPPER": (
        "",
        "1: give a user without a passwd entry one through nss_wrapper (a JVM needs a user "
        "name; images whose lock has pyspark set it)",
    ),
    "ENVBUILD_MODEL_DIR": ("/opt/envbuild/model", "the MLflow model folder to serve"),
    "ENVBUILD_HOST": ("0.0.0.0", "address to bind"),
    "ENVBUILD_PORT": ("8080", "TCP port"),
    "ENVBUILD_HTTP": (
        "builtin",
        "the HTTP layer: builtin (server.py) or uvicorn (asgi.py; needs uvicorn, which "
        "mlflow-skinny 3.x installs)",
    ),
    "ENVBUILD_WORKERS": (
        "auto",
        "worker processes sharing the socket (MLFLOW_MODELS_WORKERS); auto: one per CPU "
        "the server may run on",
    ),
    "ENVBUILD_THREADS": (
        "2",
        "predictions run at once per worker (more: longer tails, see serving.py)",
    ),
    "ENVBUILD_TIMEOUT": (
        "60",
        "seconds a prediction may take before a 504 (MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT)",
    ),
    "ENVBUILD_KEEPALIVE": ("5", "seconds an idle keep-alive connection stays open"),
    "ENVBUILD_BACKLOG": ("2048", "listen backlog (capped by net.core.somaxconn)"),
    "ENVBUILD_MAX_BODY": ("104857600", "largest request body in bytes (413 above)"),
    "ENVBUILD_GRACE": ("30", "seconds in-flight requests get after SIGTERM"),
    "ENVBUILD_LOG_LEVEL": ("INFO", "DEBUG, INFO, WARNING or ERROR; logs go to stderr"),
    "ENVBUILD_ACCESS_LOG": ("1", "1 logs one line per request, 0 does not"),
    "ENVBUILD_MODEL_NAME": ("model", "the model's name in the V2 routes (/v2/models/<name>)"),
    "ENVBUILD_BATCH": (
        "auto",
        "merge queued requests into one predict: 1, 0, or auto (on for row-wise flavors)",
    ),
    "ENVBUILD_BATCH_MAX": ("64", "most requests merged into one predict"),
    "ENVBUILD_BATCH_WAIT_MS": (
        "0",
        "ms a free predict slot may wait for more requests while others are being read",
    ),
}

_FALLBACKS = {
    "ENVBUILD_WORKERS": "MLFLOW_MODELS_WORKERS",
    "ENVBUILD_TIMEOUT": "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT",
}


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable."""


# Not kw_only: the server also runs on Python 3.8/3.9 images (kw_only needs 3.10).
@dataclass(frozen=True)
class Config:
    model_dir: str
    host: str
    port: int
    workers: int
    threads: int
    timeout: float
    keepalive: float
    backlog: int
    max_body: int
    grace: float
    log_level: str
    access_log: bool
    model_name: str = "model"
    batch: str = "auto"  # "auto", "1" or "0"
    batch_max: int = 64
    batch_wait: float = 0.0  # seconds
    http: str = "builtin"  # "builtin" or "uvicorn"


def _get(env: Mapping[str, str], name: str) -> tuple[str, str]:
    """The raw value and the variable it came from."""
    if env.get(name, "").strip():
        return env[name].strip(), name
    fallback = _FALLBACKS.get(name)
    if fallback and env.get(fallback, "").strip():
        return env[fallback].strip(), fallback
    return ENV_VARS[name][0], name


def _number(
    env: Mapping[str, str], name: str, kind: Callable[[str], T], low: float, high: float
) -> T:
    raw, source = _get(env, name)
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{source}={raw!r} is not a number") from None
    if not low <= value <= high:  # type: ignore[operator]
        raise ConfigError(f"{source}={raw!r} is out of range ({low:g}..{high:g})")
    return value


def _workers(env: Mapping[str, str]) -> int:
    """``auto`` is one worker per CPU this process may run on (its affinity mask, which
    ``docker run --cpuset-cpus`` narrows), as MLflow's default of one per CPU."""
    if _get(env, "ENVBUILD_WORKERS")[0].lower() == "auto":
        try:
            return min(256, max(1, len(os.sched_getaffinity(0))))
        except AttributeError:  # no affinity on this OS
            return min(256, max(1, os.cpu_count() or 1))
    return _number(env, "ENVBUILD_WORKERS", int, 1, 256)


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Read the settings from ``env`` (default: ``os.environ``)."""
    env = os.environ if env is None else env
    level, _ = _get(env, "ENVBUILD_LOG_LEVEL")
    if level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"ENVBUILD_LOG_LEVEL={level!r} is not DEBUG, INFO, WARNING or ERROR")
    access, _ = _get(env, "ENVBUILD_ACCESS_LOG")
    if access.lower() not in ("0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"ENVBUILD_ACCESS_LOG={access!r} is not 0 or 1")
    batch, _ = _get(env, "ENVBUILD_BATCH")
    batch = {"true": "1", "yes": "1", "false": "0", "no": "0"}.get(batch.lower(), batch.lower())
    if batch not in ("auto", "0", "1"):
        raise ConfigError(f"ENVBUILD_BATCH={batch!r} is not auto, 0 or 1")
    http, _ = _get(env, "ENVBUILD_HTTP")
    if http.lower() not in ("builtin", "uvicorn"):
        raise ConfigError(f"ENVBUILD_HTTP={http!r} is not builtin or uvicorn")
    name, _ = _get(env, "ENVBUILD_MODEL_NAME")
    if "/" in name:
        raise ConfigError(f"ENVBUILD_MODEL_NAME={name!r} has a '/'")
    return Config(
        model_dir=_get(env, "ENVBUILD_MODEL_DIR")[0],
        host=_get(env, "ENVBUILD_HOST")[0],
        port=_number(env, "ENVBUILD_PORT", int, 0, 65535),
        workers=_workers(env),
        threads=_number(env, "ENVBUILD_THREADS", int, 1, 1024),
        timeout=_number(env, "ENVBUILD_TIMEOUT", float, 0.001, 86400),
        keepalive=_number(env, "ENVBUILD_KEEPALIVE", float, 0.1, 3600),
        backlog=_number(env, "ENVBUILD_BACKLOG", int, 1, 65535),
        max_body=_number(env, "ENVBUILD_MAX_BODY", int, 1, 2**40),
        grace=_number(env, "ENVBUILD_GRACE", float, 0, 3600),
        log_level=level.upper(),
        access_log=access.lower() in ("1", "true", "yes"),
        model_name=name,
        batch=batch,
        batch_max=_number(env, "ENVBUILD_BATCH_MAX", int, 1, 65536),
        batch_wait=_number(env, "ENVBUILD_BATCH_WAIT_MS", float, 0, 10000) / 1000,
        http=http.lower(),
    )

"""envbuild: turn an MLflow model folder into an environment that provably runs it.

The library API (``envbuild.api``), one function per command, each returning a typed
result with ``findings``, ``exit_code`` and ``to_json()``::

    import envbuild

    report = envbuild.check(["examples/sklearn-credit"], offline=True)
    assert report.exit_code == 0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "check", "infer", "lock", "show"]

if TYPE_CHECKING:
    from envbuild.api import check, infer, lock, show


def __getattr__(name: str) -> Any:
    # Imported on first use: `import envbuild` (the CLI, the version) stays cheap.
    if name in __all__ and name != "__version__":
        from envbuild import api

        return getattr(api, name)
    raise AttributeError(f"module 'envbuild' has no attribute {name!r}")

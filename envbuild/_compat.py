"""What Python 3.11 added and envbuild uses, for the 3.10 it also supports
(``requires-python >= 3.10``: pipx and uvx on Ubuntu 22.04 run 3.10)."""

from __future__ import annotations

import enum
import sys

if sys.version_info >= (3, 11):
    from enum import StrEnum

    import tomllib
else:  # pragma: no cover - exercised by tests/integration/test_python310.py
    import tomli as tomllib

    class StrEnum(str, enum.Enum):
        """A str whose str() and format() are its value, as 3.11's enum.StrEnum."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return format(str(self.value), spec)


__all__ = ["StrEnum", "tomllib"]

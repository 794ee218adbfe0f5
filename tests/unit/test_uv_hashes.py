"""uv_requirement (the hash-pinned uv a cross-platform build's pip fetches): a failed
request to the index is tried again before envbuild says it has no uv for the platform
(EB409). The stop of the 2026-12-04 rehearsal: one failed fetch under load failed the
arm64 build."""

from __future__ import annotations

import urllib.error
import urllib.request
from importlib.metadata import version
from typing import Any

import pytest

from envbuild._adapters import uv as _uv


@pytest.mark.network
def test_a_failed_fetch_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    real = urllib.request.urlopen
    calls: list[str] = []

    def flaky(req: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(req.full_url)
        if len(calls) == 1:
            raise urllib.error.URLError("connection reset by peer")
        return real(req, *args, **kwargs)  # the real index, from the second try on

    monkeypatch.setattr(urllib.request, "urlopen", flaky)
    monkeypatch.setattr("time.sleep", lambda _s: None)
    line = _uv.uv_requirement()
    assert len(calls) == 2
    assert line is not None and line.startswith(f"uv=={version('uv')} --hash=sha256:")


def test_an_unreachable_index_gives_none_after_three_tries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def down(req: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(req.full_url)
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", down)
    slept: list[float] = []
    monkeypatch.setattr("time.sleep", slept.append)
    assert _uv.uv_requirement() is None
    assert len(calls) == 3 and slept == [1, 2]

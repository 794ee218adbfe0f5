"""Run a function with room on CPython's frame stack, so its callees stay in one chunk.

CPython 3.11 and later keep Python frames in 16 KiB chunks, and up to the fix of March
2026 (python/cpython#142183: keep one spare chunk; in 3.15 and later 3.13 releases) free a
chunk (munmap) as soon as the first frame in it returns, so the next call at that depth
maps a new one. Code that loops at a depth where its calls straddle a chunk edge pays an
mmap, a munmap and a page fault per call. Loading sklearn-credit under ``python -m
envbuild_serve`` (Python 3.11.2) mapped and unmapped a chunk about 35,000 times (18,000
when started as a script; the caller's depth decides where the edges fall), mostly while
scipy.stats parses ~600 docstrings at import: the load took 1.4-1.5 s in the image, and
1.0-1.1 s beneath ``call``.

``call``'s own frame reserves 128 KiB of evaluation stack it never uses (its code's
``co_stacksize`` is raised). That frame cannot fit in the current chunk, so CPython gives
it a chunk of its own, rounded up to 256 KiB; every frame called beneath it goes into the
~128 KiB left.
The same load nests a little over 32 KiB of frames: with 32 KiB left it still crossed an
edge 12 times, with 64 KiB once. The reserved slots are never written, so their pages are
never touched; on a Python with the fix the reservation costs that one chunk and nothing
else. Python 3.8 to 3.10 give each frame its own heap block; there ``call`` is a plain
call.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, TypeVar

T = TypeVar("T")

# Evaluation-stack slots (8 bytes each) call's frame reserves: 128 KiB.
RESERVED_SLOTS = 16 * 1024
# Every CPython with the chunked frame stack, fixed or not (harmless where fixed).
CHUNKED = sys.implementation.name == "cpython" and sys.version_info[:2] >= (3, 11)


def call(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, with the frames it calls kept in one frame-stack chunk."""
    return fn(*args)


if CHUNKED:
    call.__code__ = call.__code__.replace(co_stacksize=call.__code__.co_stacksize + RESERVED_SLOTS)

"""Pickle scanning by opcodes: which modules and callables a pickle would import, without
unpickling it.

* ``unsafe``: the unsafe-callable table and how a pickle's names are checked against it;
* ``vm``: the symbolic pickle machine that walks the opcodes (EB501, EB502, EB503, EB210);
* ``heuristic``: byte patterns where the opcodes do not parse;
* ``containers``: compressed, zip, tar, npy/npz and skops files around pickles (EB211).

``scan_file`` judges a file by its content, not by its name.
"""

from __future__ import annotations

from pathlib import Path

from envbuild.scan import FileScan
from envbuild.scan.pickles.containers import (
    _EXPLICIT_P0,
    _NPY_MAGIC,
    MAX_DECOMPRESSED,
    MAX_FALLBACK,
    PICKLE_SUFFIXES,
    _codec,
    _is_tar,
    _merge,
    _pickle_named,
    _scan_bytes,
    _scan_zip,
    _sniff,
)
from envbuild.scan.pickles.unsafe import CODES, unsafe_reason
from envbuild.scan.pickles.vm import (
    _finish,
    _Out,
    _scan_stream,
    looks_like_pickle,
    scan_pickle_bytes,
)

__all__ = [
    "CODES",
    "MAX_DECOMPRESSED",
    "PICKLE_SUFFIXES",
    "looks_like_pickle",
    "scan_file",
    "scan_pickle_bytes",
    "unsafe_reason",
]


def scan_file(path: Path, rel: str, *, sniff: bool = False) -> FileScan | None:
    """Scan one file if it is a pickle, a compressed pickle (joblib), a torch/zip archive
    holding pickles, a tar, a numpy object array or a skops file; None for anything else.

    Any file is sniffed by its content, whatever its name. With ``sniff`` (names that are
    not model files: text, JSON, other model formats) or where the content does not start
    like a pickle, the result is kept only if it shows an unsafe finding or a pickle that
    parsed cleanly, so other formats do not produce parse warnings."""
    try:
        handle = path.open("rb")
        size = path.stat().st_size
    except OSError:
        return None
    with handle:
        head = handle.read(512)
        handle.seek(0)
        if head.startswith(b"PK\x03\x04"):
            scans = _scan_zip(handle, rel, 0)
            return _merge(rel, scans) if scans else None
        named = _pickle_named(path.name) and not sniff
        if looks_like_pickle(head) and not sniff:
            out = _Out(file=rel, member=None)
            fallback = handle.read() if size <= MAX_FALLBACK else None
            handle.seek(0)
            _scan_stream(handle, size, out, fallback)
            return _finish(out, "pickle")
        if head.startswith(_NPY_MAGIC) or _is_tar(head) or _codec(head[:16]) is not None:
            if size > MAX_DECOMPRESSED:
                return None
            return _scan_bytes(handle.read(), rel, None, named=named, fmt="pickle")
        full = named and head[:1] in _EXPLICIT_P0
        return _sniff(handle, size, rel, None, full=full, fmt="pickle")

"""Containers around pickles, judged by content, not by name: joblib's zlib/gzip/bz2/xz/lzma
(lz4 and zstd when their packages are present), zip files (PyTorch, ``.pt2``, ``.npz``; read
as leniently as PyTorch reads them), tar files, numpy ``.npy`` object arrays, skops files
(``schema.json``) and the bytes a pickle hands to ``torch.storage._load_from_bytes``.
Containers nest (gzip in zip in tar, a zip in a pickle) within size and depth limits; one
that cannot be opened is EB211.
"""

from __future__ import annotations

import bz2
import contextlib
import contextvars
import gzip
import io
import json
import lzma
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from envbuild.findings import Location
from envbuild.scan import FileScan, Ref, RefKind
from envbuild.scan.pickles.heuristic import _IDENT_TEXT, _heuristic
from envbuild.scan.pickles.unsafe import _HINT, EB210, EB211, EB503
from envbuild.scan.pickles.vm import (
    _finish,
    _Out,
    _scan_stream,
    looks_like_pickle,
    scan_pickle_bytes,
)

MAX_DECOMPRESSED = 2 << 30  # 2 GiB: beyond that we stop rather than exhaust memory
MAX_ZIP_DEPTH = 3

PICKLE_SUFFIXES = frozenset(
    {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".sav", ".dill", ".cloudpickle"}
)


_CODECS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
)


def _codec(head: bytes) -> str | None:
    for magic, name in _CODECS:
        if head.startswith(magic):
            return name
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return "zlib"
    return None


def _decompress(data: bytes, codec: str) -> bytes:
    if codec == "zlib":
        d = zlib.decompressobj()
        raw = d.decompress(data, MAX_DECOMPRESSED)
    elif codec == "gzip":
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as g:
            raw = g.read(MAX_DECOMPRESSED + 1)
    elif codec == "bz2":
        raw = bz2.BZ2Decompressor().decompress(data, MAX_DECOMPRESSED + 1)
    elif codec in ("xz", "lzma"):
        fmt = lzma.FORMAT_XZ if codec == "xz" else lzma.FORMAT_ALONE
        raw = lzma.LZMADecompressor(format=fmt).decompress(data, MAX_DECOMPRESSED + 1)
    elif codec == "zstd":
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            raise OSError("zstandard is not installed (pip install zstandard to scan it)") from None
        raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_DECOMPRESSED)
    elif codec == "7z":
        raise OSError("7z archives are not scanned; no model loader opens them unpacked")
    elif codec == "lz4":
        try:
            import lz4.frame  # type: ignore[import-not-found]
        except ImportError:
            raise OSError("lz4 is not installed (pip install lz4 to scan this file)") from None
        raw = lz4.frame.decompress(data)
    else:  # pragma: no cover - _codec only returns the names above
        raise OSError(f"unknown codec {codec}")
    if len(raw) > MAX_DECOMPRESSED:
        raise OSError("larger than 2 GiB once decompressed")
    return bytes(raw)


def _scan_zip(handle: IO[bytes], file: str, depth: int, prefix: str = "") -> list[FileScan]:
    results: list[FileScan] = []
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, ValueError):
        return results
    with archive:
        names = archive.namelist()
        if "schema.json" in names and any(n.endswith(".npy") for n in names):
            results.append(_scan_skops(archive.read("schema.json"), file, prefix + "schema.json"))
            return results
        for info in archive.infolist():
            if info.is_dir():
                continue
            member = prefix + info.filename
            named = _pickle_named(info.filename)
            if not named and info.file_size > MAX_SNIFF_MEMBER:
                head = _member_head(archive, handle, info)
                if not (looks_like_pickle(head) or _codec(head) or head[:4] == b"PK\x03\x04"):
                    continue
            data = _read_member(archive, handle, info)
            if data is None:
                if named:
                    results.append(_unreadable(file, member, "zip member could not be read"))
                continue
            if data[:4] == b"PK\x03\x04":
                if depth < MAX_ZIP_DEPTH:
                    results.extend(_scan_zip(io.BytesIO(data), file, depth + 1, member + "!"))
                continue
            scanned = _scan_bytes(data, file, member, named=named, fmt="torch-zip")
            if scanned is not None:
                results.append(scanned)
    return results


MAX_SNIFF_MEMBER = 1 << 20  # members without a pickle name: read whole only if they look like one


def _member_head(archive: zipfile.ZipFile, handle: IO[bytes], info: zipfile.ZipInfo) -> bytes:
    try:
        with archive.open(info) as f:
            return f.read(8)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, ValueError, EOFError):
        data = _raw_member(handle, info, limit=64)
        return data[:8] if data else b""


def _read_member(
    archive: zipfile.ZipFile, handle: IO[bytes], info: zipfile.ZipInfo
) -> bytes | None:
    """A member's bytes as a lenient reader (PyTorch's) gets them: a wrong CRC, an
    "encrypted" flag on clear data, or a local header naming another file do not stop it."""
    if info.file_size > MAX_DECOMPRESSED:
        return None
    try:
        with archive.open(info) as f:
            data = f.read(MAX_DECOMPRESSED + 1)  # the declared size may lie (zip bombs)
        return data if len(data) <= MAX_DECOMPRESSED else None
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, ValueError, EOFError):
        return _raw_member(handle, info)


def _raw_member(handle: IO[bytes], info: zipfile.ZipInfo, limit: int | None = None) -> bytes | None:
    try:
        handle.seek(info.header_offset)
        local = handle.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        handle.seek(info.header_offset + 30 + name_len + extra_len)
        raw = handle.read(info.compress_size)
        if info.compress_type == zipfile.ZIP_STORED:
            return raw[:limit] if limit else raw
        if info.compress_type == zipfile.ZIP_DEFLATED:
            d = zlib.decompressobj(-15)
            return d.decompress(raw, limit or MAX_DECOMPRESSED)
        if info.compress_type == zipfile.ZIP_BZIP2:
            return bz2.BZ2Decompressor().decompress(raw, limit or MAX_DECOMPRESSED)
        if info.compress_type == zipfile.ZIP_LZMA:
            return _zip_lzma(raw, limit)
    except (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError, struct.error):
        return None
    return None


def _zip_lzma(raw: bytes, limit: int | None) -> bytes:
    # zip's lzma members: 2 version bytes, 2 bytes of properties size, the properties
    props_len = int.from_bytes(raw[2:4], "little")
    props = raw[4 : 4 + props_len]
    filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
    d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
    return d.decompress(raw[4 + props_len :], limit or MAX_DECOMPRESSED)


def _unreadable(file: str, member: str | None, why: str) -> FileScan:
    return FileScan(
        file=file,
        format="unreadable",
        findings=(
            EB211.at(
                Location(file=file, field=member),
                f"{file}" + (f"[{member}]" if member else "") + f": {why}",
                hint="its requirements and safety are unknown: install what opens it (lz4, "
                "zstandard) so the scan can read it, or pass --trust-model",
            ),
        ),
    )


_SKOPS_MODULE = re.compile(rb'"__module__":\s*"([^"\\]+)"')


def _scan_skops(schema: bytes, file: str, member: str) -> FileScan:
    """skops stores no pickle: its schema.json names every type (and function) it will
    import as ``__class__``/``__module__`` pairs."""
    out = _Out(file=file, member=member)
    try:
        doc = json.loads(schema)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        out.findings.append(
            EB210.at(
                out.loc(), f"skops schema.json is not valid JSON ({exc}); scanned by byte patterns"
            )
        )
        for match in _SKOPS_MODULE.finditer(schema):
            out.ref(match.group(1).decode("utf-8", "replace"), None, RefKind.SKOPS, match.start())
        return _finish(out, "skops")
    seen: dict[tuple[str, str | None], None] = {}
    for node in _walk_json(doc):
        module = node.get("__module__")
        cls = node.get("__class__")
        if not isinstance(module, str):
            continue
        name = cls if isinstance(cls, str) else None
        content = node.get("content")
        if node.get("__loader__") == "FunctionNode" and isinstance(content, dict):
            # a function: content names the module and function it loads
            fmod, fname = content.get("module_path"), content.get("function")
            if isinstance(fmod, str) and isinstance(fname, str):
                seen.setdefault((fmod, fname), None)
        elif node.get("__loader__") == "TypeNode" and isinstance(content, dict):
            tmod, tname = content.get("__module__"), content.get("__class__")
            if isinstance(tmod, str) and isinstance(tname, str):
                seen.setdefault((tmod, tname), None)
        seen.setdefault((module, name), None)
    for module, name in seen:
        needle = f'"__module__": "{module}"'.encode()
        offset = schema.find(needle)
        out.ref(module, name, RefKind.SKOPS, offset if offset >= 0 else 0)
    return _finish(out, "skops")


def _walk_json(doc: Any) -> Iterator[dict[str, Any]]:
    todo = [doc]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            yield node
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)


def _pickle_named(name: str) -> bool:
    """A pickle by its name, also under a compression suffix (model.pkl.gz)."""
    suffixes = [s.lower() for s in Path(name).suffixes[-2:]]
    return bool(suffixes) and (
        suffixes[-1] in PICKLE_SUFFIXES
        or (
            len(suffixes) == 2
            and suffixes[-1] in _COMPRESSED_SUFFIXES
            and suffixes[0] in PICKLE_SUFFIXES
        )
    )


_COMPRESSED_SUFFIXES = frozenset(
    {".gz", ".bz2", ".xz", ".lzma", ".z", ".zst", ".lz4", ".zip", ".tar"}
)
_NPY_MAGIC = b"\x93NUMPY"
_EXPLICIT_P0 = (b"(", b"c", b"]", b"}")


MAX_FALLBACK = 64 << 20  # byte-pattern fallback only for files up to this size


def _sniff(
    stream: IO[bytes], size: int, file: str, member: str | None, *, full: bool, fmt: str
) -> FileScan | None:
    """Parse content that may or may not be a pickle. Unless ``full``, keep the result only
    if it is unsafe or a clean pickle; the byte patterns run only where parsing got past
    the first opcodes (other formats fail at once)."""
    start = stream.tell()
    out = _Out(file=file, member=member, quiet=not full)
    fallback = None
    if full and size <= MAX_FALLBACK:
        fallback = stream.read()
        stream.seek(start)
    _scan_stream(stream, size, out, fallback)
    if not full and out.failed_at > 16 and size <= MAX_FALLBACK:
        stream.seek(start)
        _heuristic(stream.read(), 0, out)
    scanned = _finish(out, fmt)
    if full:
        return scanned
    if out.unsafe_found or (not out.failed and out.refs and all(_ident(r) for r in out.refs)):
        return scanned
    return None


# containers inside containers (gzip in zip in tar, torch bytes in a pickle, ...): a quine
# archive must not recurse forever
_NESTING: contextvars.ContextVar[int] = contextvars.ContextVar("envbuild_nesting", default=0)
MAX_NESTING = 8


@contextlib.contextmanager
def _deeper() -> Iterator[bool]:
    token = _NESTING.set(_NESTING.get() + 1)
    try:
        yield _NESTING.get() <= MAX_NESTING
    finally:
        _NESTING.reset(token)


def _scan_bytes(
    data: bytes, file: str, member: str | None, *, named: bool, fmt: str
) -> FileScan | None:
    """Bytes of any kind, as scan_file judges a file's content."""
    with _deeper() as ok:
        if not ok:
            return _unreadable(file, member, "containers nested too deep") if named else None
        return _scan_content(data, file, member, named=named, fmt=fmt)


def _scan_content(
    data: bytes, file: str, member: str | None, *, named: bool, fmt: str
) -> FileScan | None:
    if data[:4] == b"PK\x03\x04":
        scans = _scan_zip(io.BytesIO(data), file, 1, (member + "!") if member else "")
        return _merge(file, scans) if scans else None
    if data.startswith(_NPY_MAGIC):
        return _scan_npy(data, file, member)
    if _is_tar(data):
        scans = _scan_tar(data, file, member)
        return _merge(file, scans) if scans else None
    codec = _codec(data[:16])
    if codec is not None:
        try:
            raw = _decompress(data, codec)
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
            if not named:
                return None  # some other compressed file, not ours to judge
            return FileScan(
                file=file,
                format=f"{codec}?",
                findings=(
                    EB211.at(
                        Location(file=file, field=member),
                        f"{codec}-compressed file could not be scanned: {exc}",
                        hint="its requirements and safety are unknown: re-save it, or "
                        "pass --trust-model",
                    ),
                ),
            )
        scanned = _scan_bytes(raw, file, member, named=named, fmt=fmt)
        if scanned is None:
            return None
        return FileScan(
            file=file,
            format=f"{scanned.format}+{codec}",
            refs=scanned.refs,
            hints=scanned.hints,
            findings=scanned.findings,
        )
    full = named and (looks_like_pickle(data[:2]) or data[:1] in _EXPLICIT_P0)
    return _sniff(io.BytesIO(data), len(data), file, member, full=full, fmt=fmt)


def _ident(ref: Ref) -> bool:
    return bool(_IDENT_TEXT.match(ref.module)) and (
        ref.name is None or bool(_IDENT_TEXT.match(ref.name))
    )


def _scan_npy(data: bytes, file: str, member: str | None) -> FileScan | None:
    """A .npy file: an object array's data is a pickle (numpy.load(allow_pickle=True))."""
    import ast

    major = data[6] if len(data) > 6 else 0
    if major == 1:
        hlen, start = int.from_bytes(data[8:10], "little"), 10
    else:
        hlen, start = int.from_bytes(data[8:12], "little"), 12
    body = data[start + hlen :]
    try:
        header = ast.literal_eval(data[start : start + hlen].decode("latin-1"))
        descr = header.get("descr") if isinstance(header, dict) else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        descr = None
    if isinstance(descr, str) and not _OBJECT_DESCR.match(descr):
        return None  # raw array data
    if isinstance(descr, str):
        out = _Out(file=file, member=member)
        _scan_stream(io.BytesIO(body), len(body), out, body)
        return _finish(out, "npy-object")
    # a structured or unreadable dtype may hold objects: keep what looks unsafe
    return _sniff(io.BytesIO(body), len(body), file, member, full=False, fmt="npy")


_OBJECT_DESCR = re.compile(r"^[|<>=]?O\d*$|^object$")


def _is_tar(data: bytes) -> bool:
    return len(data) > 262 and data[257:262] == b"ustar"


def _scan_tar(data: bytes, file: str, member: str | None) -> list[FileScan]:
    """A tar (legacy torch.save, pandas' .tar pickles): every regular member by content."""
    results: list[FileScan] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar.getmembers():
                if not info.isfile():
                    continue
                f = tar.extractfile(info)
                if f is None:
                    continue
                content = f.read(MAX_DECOMPRESSED)
                name = (member + "!" if member else "") + info.name
                scanned = _scan_bytes(content, file, name, named=True, fmt="tar")
                if scanned is not None:
                    results.append(scanned)
    except (tarfile.TarError, OSError, ValueError, EOFError):
        return results
    return results


def _merge(rel: str, scans: list[FileScan]) -> FileScan:
    fmt = scans[0].format if len({s.format for s in scans}) == 1 else "zip"
    return FileScan(
        file=rel,
        format=fmt,
        refs=tuple(r for s in scans for r in s.refs),
        hints=tuple(h for s in scans for h in s.hints),
        findings=tuple(f for s in scans for f in s.findings),
    )


def _scan_nested(out: _Out, data: bytes, pos: int) -> None:
    with _deeper() as ok:
        if not ok:
            out.unsafe(EB503, pos, f"pickle nests pickles too deep to scan at byte {pos}", _HINT)
            return
        _scan_nested_bytes(out, data, pos)


def _scan_nested_bytes(out: _Out, data: bytes, pos: int) -> None:
    if data[:4] == b"PK\x03\x04":
        scans = _scan_zip(io.BytesIO(data), out.file, 1, f"{out.member or ''}@{pos}!")
    else:
        scans = [scan_pickle_bytes(data, out.file, member=f"{out.member or ''}@{pos}")]
    for scan in scans:
        out.refs.extend(scan.refs)
        for finding in scan.findings:
            out.findings.append(finding)
            if finding.code in ("EB501", "EB503"):
                out.unsafe_found.append((pos, finding))

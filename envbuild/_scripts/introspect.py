"""Describe a Python environment as JSON: run inside the inspected interpreter.

``envbuild.installed`` runs this file's source with ``python -c`` in the interpreter named by
``--python`` (or calls ``collect()`` in-process). It must run on Python 3.8+ with only the
standard library: no ``match``, no runtime ``X | Y`` types, no 3.9+ library calls. It reads
``*.dist-info``/``*.egg-info`` folders directly (faster than importing importlib.metadata
and walking its objects) and never imports any installed package.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # as a script: never import from the working directory
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]

import json
import os
import platform
import re
from typing import Any

SCHEMA = 1
_NAME_RE = re.compile(r"[-_.]+")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXT_SUFFIXES = (".so", ".pyd")


def _canon(name: str) -> str:
    return _NAME_RE.sub("-", name).lower()


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _headers(text: str) -> dict[str, list[str]]:
    """The RFC 822 header block of METADATA/PKG-INFO (the body is the description)."""
    out: dict[str, list[str]] = {}
    last = None
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:  # a whitespace-only line is a continuation (License: ...)
            break
        if line[0] in " \t" and last is not None:
            out[last][-1] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        last = key.strip().lower()
        out.setdefault(last, []).append(value.strip())
    return out


def _egg_requires(text: str) -> list[str]:
    """requires.txt of an egg-info: sections [extra], [:marker] or [extra:marker]."""
    out: list[str] = []
    marker = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            extra, _, cond = line[1:-1].partition(":")
            parts = []
            if extra:
                parts.append(f'extra == "{extra}"')
            if cond:
                parts.append(f"({cond})")
            marker = " and ".join(parts)
            continue
        out.append(line + ("; " + marker if marker else ""))
    return out


def _module_of(path: str) -> str | None:
    """Dotted module name of a file path inside site-packages, or None."""
    parts = path.split("/")
    last = parts[-1]
    if last.endswith(".py"):
        stem = last[:-3]
    elif last.endswith(_EXT_SUFFIXES):
        stem = last.split(".")[0]
    else:
        return None
    names = parts[:-1] + ([] if stem == "__init__" else [stem])
    if not names or not all(_IDENT_RE.match(n) for n in names):
        return None
    return ".".join(names)


def _modules_in_dir(folder: str) -> list[str]:
    out: list[str] = []
    try:
        entries = os.listdir(folder)
    except OSError:
        return out
    for entry in entries:
        full = os.path.join(folder, entry)
        if os.path.isdir(full):
            if _IDENT_RE.match(entry) and (
                os.path.exists(os.path.join(full, "__init__.py"))
                or any(f.endswith(".py") for f in os.listdir(full))
            ):
                out.append(entry)
        else:
            mod = _module_of(entry)
            if mod and mod not in ("setup", "conftest"):
                out.append(mod)
    return out


_FINDER_MAPPING = re.compile(r"MAPPING\s*(?::[^=\n]*)?=\s*(\{[^}]*\})")


def _editable_modules(site: str, rel: str) -> list[str]:
    """Top-level modules of an editable install, from setuptools' finder MAPPING or from
    the folders a .pth file adds (hatchling, flit, setuptools' lenient mode)."""
    text = _read(os.path.join(site, rel)) or ""
    if rel.endswith(".py"):
        match = _FINDER_MAPPING.search(text)
        if not match:
            return []
        return re.findall(r"['\"]([A-Za-z_][A-Za-z0-9_.]*)['\"]\s*:", match.group(1))
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "import ", "import\t")):
            continue
        folder = line if os.path.isabs(line) else os.path.join(site, line)
        out.extend(_modules_in_dir(folder))
    return out


def _dist(site: str, entry: str) -> dict[str, Any] | None:
    info = os.path.join(site, entry)
    egg = entry.endswith(".egg-info")
    if egg and not os.path.isdir(info):
        headers_text = _read(info)  # a single-file PKG-INFO
    else:
        headers_text = _read(os.path.join(info, "PKG-INFO" if egg else "METADATA"))
    if headers_text is None:
        return None
    headers = _headers(headers_text)
    name = (headers.get("name") or [""])[0]
    version = (headers.get("version") or [""])[0]
    if not name:
        return None
    requires = list(headers.get("requires-dist") or [])
    if egg and os.path.isdir(info):
        requires = _egg_requires(_read(os.path.join(info, "requires.txt")) or "")
    direct_url = None
    raw_direct = _read(os.path.join(info, "direct_url.json")) if not egg else None
    if raw_direct:
        try:
            direct_url = json.loads(raw_direct)
        except ValueError:
            direct_url = None
    paths: list[str] = []
    files_text = _read(os.path.join(info, "RECORD")) if not egg else None
    if files_text is not None:
        for line in files_text.splitlines():
            if line.startswith('"'):
                paths.append(line[1:].split('"', 1)[0])
            elif line:
                paths.append(line.split(",", 1)[0])
    elif egg and os.path.isdir(info):
        installed = _read(os.path.join(info, "installed-files.txt"))
        if installed:
            rel_base = os.path.relpath(site, info).replace(os.sep, "/")
            for line in installed.splitlines():
                p = os.path.normpath(os.path.join(rel_base, line)).replace(os.sep, "/")
                paths.append(p)
    top: set[str] = set()
    editable: list[str] = []
    for first in {p.split("/", 1)[0] if "/" in p else p for p in paths}:
        if first.startswith("__editable__") or (first.endswith(".pth") and direct_url):
            editable.extend(_editable_modules(site, first))
        elif first.endswith(".py"):
            top.add(first[:-3])
        elif first.endswith(_EXT_SUFFIXES):
            top.add(first.split(".")[0])
        elif _IDENT_RE.match(first) and first != "__pycache__":
            top.add(first)
    top = {t for t in top if _IDENT_RE.match(t)}
    for mod in editable:
        top.add(mod.split(".")[0])
    if not top:
        tl = _read(os.path.join(info, "top_level.txt")) if os.path.isdir(info) else None
        if tl:
            top.update(t.strip().replace("/", ".") for t in tl.splitlines() if t.strip())
    installer = _read(os.path.join(info, "INSTALLER")) if os.path.isdir(info) else None
    return {
        "name": name,
        "canonical": _canon(name),
        "version": version,
        "requires": requires,
        "top_level": sorted(t for t in top if _IDENT_RE.match(t.split(".")[0])),
        "modules": editable,
        "_paths": paths,
        "direct_url": direct_url,
        "installer": installer.strip() if installer else None,
        "requested": os.path.exists(os.path.join(info, "REQUESTED")),
        "location": site,
        "metadata_dir": entry,
    }


def _stdlib() -> list[str]:
    names = getattr(sys, "stdlib_module_names", None)  # 3.10+
    if names:
        return sorted(set(names) | set(sys.builtin_module_names))
    import sysconfig

    out = set(sys.builtin_module_names)
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib"):
        folder = paths.get(key)
        if not folder:
            continue
        out.update(m for m in _modules_in_dir(folder) if m != "site-packages")
        dynload = os.path.join(folder, "lib-dynload")
        out.update(_modules_in_dir(dynload))
    out.discard("site-packages")
    out.discard("dist-packages")
    return sorted(out)


def _markers() -> dict[str, str]:
    def full(info: Any) -> str:
        version = f"{info.major}.{info.minor}.{info.micro}"
        if info.releaselevel != "final":
            version += info.releaselevel[0] + str(info.serial)
        return version

    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": full(sys.implementation.version),
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


_INDEX_ENV = (
    ("PIP_INDEX_URL", "--index-url"),
    ("PIP_EXTRA_INDEX_URL", "--extra-index-url"),
    ("PIP_FIND_LINKS", "--find-links"),
    ("UV_INDEX_URL", "--index-url"),
    ("UV_DEFAULT_INDEX", "--index-url"),
    ("UV_EXTRA_INDEX_URL", "--extra-index-url"),
    ("UV_INDEX", "--extra-index-url"),
    ("UV_FIND_LINKS", "--find-links"),
)
_INDEX_KEYS = {
    "index-url": "--index-url",
    "index_url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "extra_index_url": "--extra-index-url",
    "find-links": "--find-links",
    "find_links": "--find-links",
}


def _index_config() -> list[dict[str, str]]:
    """Package indexes this environment's pip/uv would use: environment variables and
    pip configuration files (the places pip itself reads)."""
    out: list[dict[str, str]] = []
    for var, option in _INDEX_ENV:
        for value in (os.environ.get(var) or "").split():
            out.append({"source": "$" + var, "option": option, "value": value})
    home = os.path.expanduser("~")
    xdg_config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    xdg_dirs = (os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep)
    files = [os.path.join(d, "pip", "pip.conf") for d in xdg_dirs] + [
        "/etc/pip.conf",
        os.path.join(home, ".pip", "pip.conf"),
        os.path.join(xdg_config, "pip", "pip.conf"),
        os.path.join(sys.prefix, "pip.conf"),
    ]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(os.environ["PIP_CONFIG_FILE"])
    for path in files:
        if not os.path.isfile(path):
            continue
        import configparser  # only when there is a file to read (saves its import time)

        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        for section in ("global", "install"):
            if not parser.has_section(section):
                continue
            for key, option in _INDEX_KEYS.items():
                if parser.has_option(section, key):
                    for value in parser.get(section, key).split():
                        out.append({"source": path, "option": option, "value": value})
    return out


def collect(path: list[str] | None = None) -> dict[str, Any]:
    search = list(sys.path if path is None else path)
    seen: set[str] = set()
    dists: list[dict[str, Any]] = []
    for site in search:
        if not site or not os.path.isdir(site):
            continue
        try:
            entries = sorted(os.listdir(site))
        except OSError:
            continue
        for entry in entries:
            if not entry.endswith((".dist-info", ".egg-info")):
                continue
            dist = _dist(site, entry)
            if dist is None or dist["canonical"] in seen:
                continue  # an earlier sys.path entry shadows this one, as for imports
            seen.add(dist["canonical"])
            dists.append(dist)
    # Deep module lists are only needed where several distributions share a top-level
    # name (namespace packages such as google.* or azure.*, or mlflow and mlflow-skinny).
    owners: dict[str, int] = {}
    for d in dists:
        for t in d["top_level"]:
            owners[t] = owners.get(t, 0) + 1
    for d in dists:
        paths = d.pop("_paths")
        shared = {t for t in d["top_level"] if owners[t] > 1}
        if not shared:
            d["modules"] = []
            continue
        mods = set(d["modules"])
        for p in paths:
            if p.split("/", 1)[0] not in shared or "__pycache__" in p:
                continue
            # packages (their __init__) and modules right under the shared root are enough
            # to resolve a dotted name to its deepest enclosing package
            if p.endswith("/__init__.py") or p.count("/") == 1:
                mod = _module_of(p)
                if mod is not None:
                    mods.add(mod)
        d["modules"] = sorted(m for m in mods if m.split(".")[0] in shared)
    return {
        "schema": SCHEMA,
        "executable": sys.executable,
        "prefix": sys.prefix,
        "base_prefix": getattr(sys, "base_prefix", sys.prefix),
        "python_version": platform.python_version(),
        "markers": _markers(),
        "stdlib": _stdlib(),
        "sys_path": search,
        "distributions": dists,
        "index": _index_config(),
    }


def main() -> None:
    sys.stdout.write(json.dumps(collect(), separators=(",", ":")))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

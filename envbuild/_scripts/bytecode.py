"""Compile a venv's bytecode inside an image build: run by the target interpreter.

    python [-X no_debug_ranges] bytecode.py [--defer DIST,...] [--warm MODULE,...]

Everything in site-packages is compiled (compileall, all cores), except the files of the
``--defer`` distributions: the serving runtime that only MLflow brings (mlflow-skinny,
databricks-sdk, opentelemetry, pydantic, ...), most of which a scoring server never imports.
Those get bytecode only for the modules that importing ``--warm`` (MLflow's pyfunc loader,
the flavor's loader module, the modules envbuild's server uses) actually loads: the import
writes it, so the server starts from bytecode and the ~25 MB of bytecode for code nobody
runs never ships. A deferred module imported later compiles in memory on first import.

The model's own libraries (numpy, pandas, scikit-learn, ...) are always compiled in full:
a model load imports submodules no list can foresee. Standard library only, Python 3.7+;
if ``importlib.metadata`` (or its backport) cannot list a distribution's files, it is
compiled in full.
"""

from __future__ import annotations

import argparse
import os
import py_compile
import shutil
import subprocess
import sys
import sysconfig
import tempfile

_WARM = r"""
import importlib, sys
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException as exc:  # a failed warm import only costs its bytecode
        print("bytecode: warm import of %s failed: %s: %s" % (name, type(exc).__name__, exc))
"""


def sources(site: str, skip: frozenset[str]) -> list[str]:
    out = []
    for folder, dirs, files in os.walk(site):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                if os.path.realpath(path) not in skip:
                    out.append(path)
    return out


# py_compile's quiet= (no message for a file that does not compile) is Python 3.8+; 3.7 names
# such a file on stderr
_HAS_QUIET = sys.version_info[:2] >= (3, 8)


def _compile(paths: list[str]) -> int:
    done = 0
    for path in paths:  # a file that does not compile is skipped, as compileall does
        if _HAS_QUIET:
            written = py_compile.compile(path, doraise=False, quiet=2)
        else:
            written = py_compile.compile(path, doraise=False)
        if written is not None:
            done += 1
    return done


def compile_all(paths: list[str]) -> int:
    """Compile ``paths`` on every core, in a few large chunks: compileall sends its
    workers one file per task, and on 2 cores spent ~15 s on the 3,980 files of the
    sklearn example's venv (tests kept) where this takes 7.2 s."""
    workers = os.cpu_count() or 1
    if workers == 1 or len(paths) < 100:
        return _compile(paths)
    chunks = [paths[i :: workers * 4] for i in range(workers * 4)]
    try:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            return sum(pool.map(_compile, chunks))
    except (ImportError, OSError, NotImplementedError):  # no working multiprocessing here
        return _compile(paths)


def deferred_files(names: list[str]) -> frozenset[str]:
    try:
        import importlib.metadata as md
    except ImportError:  # Python 3.7: the backport, which MLflow 1.x requires; else all
        try:
            import importlib_metadata as md  # type: ignore[no-redef]
        except ImportError:
            return frozenset()
    out: set[str] = set()
    for name in names:
        try:
            files = md.distribution(name).files or []
        except md.PackageNotFoundError:
            continue
        for f in files:
            if str(f).endswith(".py"):
                out.add(os.path.realpath(str(f.locate())))
    return frozenset(out)


def _pyc_count(root: str) -> int:
    return sum(
        sum(1 for n in names if n.endswith(".pyc"))
        for d, _, names in os.walk(root)
        if os.path.basename(d) == "__pycache__"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bytecode.py")
    ap.add_argument("--defer", default="", help="distributions compiled only where imported")
    ap.add_argument("--warm", default="", help="modules whose import writes their bytecode")
    args = ap.parse_args(argv)
    site = sysconfig.get_paths()["purelib"]
    defer = [n for n in args.defer.split(",") if n]
    warm = [m for m in args.warm.split(",") if m]
    skip = deferred_files(defer)
    compile_all(sources(site, skip))
    full = _pyc_count(site)
    if skip and warm:
        home = tempfile.mkdtemp(prefix="envbuild-bytecode-")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(HOME=home, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
        try:
            # the same -X options as this run (no_debug_ranges in images, none in venvs)
            xopts = [f"-X{k}" if v is True else f"-X{k}={v}" for k, v in sys._xoptions.items()]
            subprocess.run(
                [sys.executable, *xopts, "-c", _WARM, *warm],
                env=env,
                cwd=home,
                check=False,
                timeout=600,
            )
        finally:
            shutil.rmtree(home, ignore_errors=True)
    total = _pyc_count(site)
    print(
        f"bytecode: {total} modules compiled; {len(skip)} deferred modules of "
        f"{len(defer)} distribution(s), {total - full} of them imported by "
        f"{', '.join(warm) or 'nothing'} and compiled"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compile a venv's bytecode inside an image build: run by the target interpreter.

    python -X no_debug_ranges _bytecode.py [--defer DIST,...] [--warm MODULE,...]

Everything in site-packages is compiled (compileall, all cores), except the files of the
``--defer`` distributions: the serving runtime that only MLflow brings (mlflow-skinny,
databricks-sdk, opentelemetry, pydantic, ...), most of which a scoring server never imports.
Those get bytecode only for the modules that importing ``--warm`` (MLflow's pyfunc loader,
the flavor's loader module, the modules envbuild's server uses) actually loads: the import
writes it, so the server starts from bytecode and the ~25 MB of bytecode for code nobody
runs never ships. A deferred module imported later compiles in memory on first import.

The model's own libraries (numpy, pandas, scikit-learn, ...) are always compiled in full:
a model load imports submodules no list can foresee. Standard library only, Python 3.8+;
if ``importlib.metadata`` cannot list a distribution's files, it is compiled in full.
"""

from __future__ import annotations

import argparse
import compileall
import os
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


class _Skip:
    """compileall's ``rx``: skip the files of deferred distributions."""

    def __init__(self, paths: frozenset[str]) -> None:
        self.paths = paths

    def search(self, fullname: str) -> bool:
        return os.path.realpath(fullname) in self.paths


def deferred_files(names: list[str]) -> frozenset[str]:
    try:
        import importlib.metadata as md
    except ImportError:  # Python 3.7 and older: compile everything
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
    ap = argparse.ArgumentParser(prog="_bytecode.py")
    ap.add_argument("--defer", default="", help="distributions compiled only where imported")
    ap.add_argument("--warm", default="", help="modules whose import writes their bytecode")
    args = ap.parse_args(argv)
    site = sysconfig.get_paths()["purelib"]
    defer = [n for n in args.defer.split(",") if n]
    warm = [m for m in args.warm.split(",") if m]
    skip = deferred_files(defer)
    compileall.compile_dir(site, quiet=1, workers=0, rx=_Skip(skip))
    full = _pyc_count(site)
    if skip and warm:
        home = tempfile.mkdtemp(prefix="envbuild-bytecode-")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(HOME=home, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
        try:
            subprocess.run(
                [sys.executable, "-X", "no_debug_ranges", "-c", _WARM, *warm],
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

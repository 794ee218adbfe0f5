"""The unsafe-callable table: which modules and names a pickle may not import or call, and
why. ``unsafe_reason`` also reads the names as Python 3's unpickler does (Python 2 names,
``fix_imports``) and checks every component of a protocol-4 dotted name (a listed module
reached through another, attributes that reach past the named object, runner names).
"""

from __future__ import annotations

import _compat_pickle

from envbuild.findings import Code, Severity, table

# Finding codes of the pickle scan (envbuild.codes gathers them for the README table).
EB501 = Code(
    "EB501",
    Severity.UNSAFE,
    "a pickle references a callable that can run code or touch the system "
    "(os.system, subprocess.*, builtins.eval, ...): loading it is unsafe",
)
EB502 = Code(
    "EB502",
    Severity.WARNING,
    "a pickle carries Python code by value (cloudpickle functions or classes); "
    "loading it defines and may run that code",
    also=(Severity.UNSAFE,),  # raised by envbuild.safety
)
EB503 = Code(
    "EB503",
    Severity.UNSAFE,
    "a pickle imports or calls something the scan cannot name (a computed import, "
    "a call of a computed callable, attributes set on an imported object, an EXT extension "
    "code, dangerous names in bytes that did not parse)",
)
EB210 = Code(
    "EB210",
    Severity.WARNING,
    "a pickle could not be parsed past some offset; the rest was scanned by byte patterns",
)
EB211 = Code(
    "EB211",
    Severity.WARNING,
    "a pickle or container could not be opened (unknown codec, lz4/zstandard not "
    "installed, corrupt data, too large or nested too deep): it cannot be verified, so "
    "commands that load the model refuse it",
    also=(Severity.UNSAFE,),  # raised by envbuild.safety
)
CODES: dict[str, str] = table(EB501, EB502, EB503, EB210, EB211)

_ANY = "*"
_METHODS = "."  # any dotted name (a method reached through a class), e.g. pathlib Path.unlink
# Python 2 module names that Python 3's unpickler maps (``fix_imports``)
_PY2_MODULES: dict[str, str] = dict(_compat_pickle.IMPORT_MAPPING)

_UNSAFE: dict[str, dict[str, str]] = {
    "os": {_ANY: "operating-system calls (os.system, os.exec*, os.remove, ...)"},
    "posix": {_ANY: "operating-system calls (posix.system is os.system on Unix)"},
    "nt": {_ANY: "operating-system calls (nt.system is os.system on Windows)"},
    "subprocess": {_ANY: "runs programs"},
    "_posixsubprocess": {_ANY: "runs programs"},
    "_winapi": {_ANY: "runs programs (CreateProcess)"},
    "pty": {_ANY: "spawns programs on a terminal"},
    "runpy": {_ANY: "runs Python modules or files"},
    "code": {_ANY: "runs Python source"},
    "codeop": {_ANY: "compiles Python source"},
    "timeit": {_ANY: "runs Python source strings"},
    "cProfile": {_ANY: "runs Python source strings"},
    "profile": {_ANY: "runs Python source strings"},
    "pdb": {_ANY: "runs Python source strings"},
    "bdb": {_ANY: "runs Python source strings"},
    "trace": {_ANY: "runs Python source strings"},
    "doctest": {_ANY: "runs Python source strings"},
    "idlelib": {_ANY: "runs Python source strings (IDLE's shell)"},
    "lib2to3": {_ANY: "evaluates source or unpickles grammar files"},
    "test.support": {_ANY: "CPython's test helpers run programs and code"},
    "importlib": {_ANY: "imports arbitrary modules"},
    "_frozen_importlib": {_ANY: "imports arbitrary modules"},
    "_frozen_importlib_external": {_ANY: "imports arbitrary modules"},
    "_imp": {_ANY: "imports arbitrary modules"},
    "imp": {_ANY: "imports arbitrary modules"},
    "zipimport": {_ANY: "imports code from archives"},
    "pkgutil": {_ANY: "resolves and imports arbitrary names (pkgutil.resolve_name)"},
    "pydoc": {_ANY: "resolves arbitrary names (pydoc.locate) and runs pagers"},
    "inspect": {
        "getattr_static": "reaches arbitrary attributes",
        "getmembers": "reaches arbitrary attributes",
        "getmembers_static": "reaches arbitrary attributes",
    },
    "site": {_ANY: "runs .pth files of arbitrary folders"},
    "socket": {_ANY: "opens network connections"},
    "_socket": {_ANY: "opens network connections"},
    "ssl": {_ANY: "opens network connections"},
    "http.client": {_ANY: "opens network connections"},
    "urllib.request": {_ANY: "opens network connections"},
    "requests": {_ANY: "opens network connections"},
    "aiohttp": {_ANY: "opens network connections"},
    "ftplib": {_ANY: "opens network connections"},
    "smtplib": {_ANY: "opens network connections"},
    "poplib": {_ANY: "opens network connections"},
    "telnetlib": {_ANY: "opens network connections"},
    "xmlrpc": {_ANY: "opens network connections"},
    "imaplib": {_ANY: "opens network connections and runs commands (IMAP4_stream)"},
    "webbrowser": {_ANY: "runs a browser program"},
    "mailcap": {_ANY: "runs the commands of mailcap entries"},
    "mlflow.projects": {_ANY: "runs project entry points"},
    "mlflow.utils.process": {_ANY: "runs programs"},
    "antigravity": {_ANY: "opens a browser when imported"},
    "uuid": {
        "_get_command_stdout": "runs programs",
        "_find_mac_near_keyword": "runs programs",
        "_find_mac_under_heading": "runs programs",
    },
    "_osx_support": {_ANY: "runs programs"},
    "_aix_support": {_ANY: "runs programs"},
    "_pyrepl": {_ANY: "runs pager programs"},
    "shutil": {_ANY: "copies, moves or deletes files (shutil.rmtree)"},
    "tempfile": {_ANY: "creates files"},
    "logging": {
        "FileHandler": "creates files",
        "config": "builds arbitrary objects from names (dictConfig)",
        "handlers": "creates files and opens connections",
    },
    "logging.config": {_ANY: "builds arbitrary objects from names (dictConfig)"},
    "logging.handlers": {_ANY: "creates files and opens connections"},
    "io": {"open": "opens files", "open_code": "opens files", "FileIO": "opens files"},
    "_io": {"open": "opens files", "open_code": "opens files", "FileIO": "opens files"},
    "codecs": {"open": "opens files"},
    "pathlib": {_METHODS: "calls a Path method (write, unlink, touch, ...)"},
    "distutils.file_util": {_ANY: "writes files"},
    "distutils.spawn": {_ANY: "runs programs"},
    "distutils.util": {"execute": "runs functions", "spawn": "runs programs"},
    "setuptools.sandbox": {_ANY: "runs setup scripts"},
    "ctypes": {_ANY: "calls native code"},
    "_ctypes": {_ANY: "calls native code"},
    "gc": {
        "get_objects": "reaches every object",
        "get_referrers": "reaches every object",
        "get_referents": "reaches every object",
    },
    "marshal": {"loads": "builds code objects from bytes", "load": "builds code objects"},
    "pickle": {_ANY: "unpickles nested, unscanned data"},
    "_pickle": {_ANY: "unpickles nested, unscanned data"},
    "shelve": {_ANY: "unpickles nested, unscanned data"},
    "dill": {
        "loads": "unpickles nested, unscanned data",
        "load": "unpickles nested data",
    },
    "dill._dill": {
        "_get_attr": "reaches arbitrary attributes",
        "_import_module": "imports arbitrary modules",
        "_eval_repr": "evaluates Python source",
        "loads": "unpickles nested, unscanned data",
        "load": "unpickles nested data",
    },
    "cloudpickle": {"loads": "unpickles nested, unscanned data", "load": "unpickles nested data"},
    "joblib": {"load": "unpickles nested, unscanned data"},
    "joblib.numpy_pickle": {"load": "unpickles nested, unscanned data"},
    "numpy": {"load": "unpickles nested data (allow_pickle)"},
    "numpy.lib.npyio": {"load": "unpickles nested data (allow_pickle)"},
    "numpy.lib._npyio_impl": {"load": "unpickles nested data (allow_pickle)"},
    "numpy.ctypeslib": {"load_library": "loads native code"},
    "numpy.f2py": {_ANY: "evaluates Fortran/Python expressions (crackfortran)"},
    "numpy.testing._private.utils": {"runstring": "executes Python source"},
    "pandas": {
        "read_pickle": "unpickles nested data",
        "read_csv": "reads files and URLs",
        "read_table": "reads files and URLs",
        "read_json": "reads files and URLs",
        "read_html": "reads files and URLs",
    },
    "pandas.io.pickle": {"read_pickle": "unpickles nested data"},
    "pandas.io.parsers": {_ANY: "reads files and URLs"},
    "types": {
        "CodeType": "builds a code object",
        "FunctionType": "builds a function from a code object",
        "LambdaType": "builds a function from a code object",
    },
    "copyreg": {
        "add_extension": "registers callables for EXT opcodes",
        "_extension_registry": "registers callables for EXT opcodes",
        "_inverted_registry": "registers callables for EXT opcodes",
    },
    "builtins": {
        "eval": "evaluates Python source",
        "exec": "executes Python source",
        "execfile": "executes Python files",
        "compile": "compiles Python source",
        "__import__": "imports arbitrary modules",
        "getattr": "reaches arbitrary attributes (e.g. os.system)",
        "setattr": "modifies arbitrary objects",
        "delattr": "modifies arbitrary objects",
        "open": "opens files",
        "file": "opens files",
        "breakpoint": "starts a debugger",
        "input": "reads the terminal",
        "globals": "reaches interpreter globals",
        "locals": "reaches interpreter locals",
        "vars": "reaches object namespaces",
        "memoryview": "reaches raw memory",
        "apply": "calls arbitrary callables",
        "help": "runs a pager program",
    },
    "operator": {
        "attrgetter": "reaches arbitrary attributes",
        "methodcaller": "calls arbitrary methods",
    },
    "_operator": {
        "attrgetter": "reaches arbitrary attributes",
        "methodcaller": "calls arbitrary methods",
    },
    "sys": {_ANY: "reaches interpreter state (sys.modules, sys.exit, ...)"},
    "asyncio": {_ANY: "runs subprocesses and network I/O"},
    "multiprocessing": {_ANY: "starts processes"},
    "signal": {_ANY: "changes process signal handling"},
    "venv": {_ANY: "creates environments and runs programs"},
    "ensurepip": {_ANY: "runs pip"},
    "pip": {_ANY: "installs packages"},
    "platform": {"popen": "runs programs"},
    "torch": {
        "load": "unpickles nested, unscanned data",
        "hub": "downloads and runs code",
        "ops": "loads native libraries",
        "classes": "loads native libraries",
    },
    "torch.serialization": {"load": "unpickles nested, unscanned data"},
    "torch.hub": {_ANY: "downloads and runs code"},
    "torch.package": {_ANY: "imports code from archives"},
    "torch.jit": {"load": "loads TorchScript archives"},
    "torch.jit.unsupported_tensor_ops": {_ANY: "executes Python source"},
    "torch._inductor": {_ANY: "compiles and loads code"},
    "torch._dynamo": {_ANY: "evaluates guard expressions"},
    "torch.fx.experimental.symbolic_shapes": {"ShapeEnv": "evaluates guard expressions"},
    "torch.utils.cpp_extension": {_ANY: "compiles and loads native code"},
    "torch.utils.bottleneck": {_ANY: "runs Python source strings"},
    "torch.utils.collect_env": {_ANY: "runs programs"},
    "torch.utils._config_module": {_ANY: "unpickles nested data"},
    "torch.utils.data.datapipes.utils.decoder": {_ANY: "unpickles nested data"},
}

# Attribute names that reach past the object a pickle names: a protocol-4 dotted name
# ``logging`` ``os.system`` is logging's own ``os`` module, ``__main__``
# ``__builtins__.exec`` is exec. Any of these as a component of a dotted name is unsafe.
_REACH = frozenset(
    {
        "__builtins__",
        "__dict__",
        "__globals__",
        "__subclasses__",
        "__getattribute__",
        "__getattr__",
        "__import__",
        "__loader__",
        "__spec__",
        "__code__",
        "__closure__",
        "__func__",
        "__self__",
        "__mro__",
        "__bases__",
        "__base__",
        "__init_subclass__",
        "__reduce__",
        "__reduce_ex__",
        "__class__",
    }
)

# Final names that run code wherever a module defines them (``from os import system``
# makes ``somemodule.system`` os.system).
_RUNNERS = frozenset(
    {
        "system",
        "popen",
        "popen2",
        "popen3",
        "popen4",
        "getoutput",
        "getstatusoutput",
        "check_output",
        "check_call",
        "execv",
        "execve",
        "execvp",
        "execvpe",
        "execl",
        "execle",
        "execlp",
        "execlpe",
        "spawnv",
        "spawnve",
        "spawnvp",
        "spawnvpe",
        "spawnl",
        "spawnle",
        "spawnlp",
        "spawnlpe",
        "posix_spawn",
        "posix_spawnp",
        "startfile",
        "eval",
        "exec",
        "execfile",
        "__import__",
        "import_module",
        "runcode",
        "runsource",
        "runctx",
        "runcall",
        "runstring",
        "run_path",
        "run_module",
        "_run_code",
        "_run_module_code",
        "resolve_name",
        "load_library",
    }
)


def _py2_names(module: str, name: str | None) -> tuple[str, str | None]:
    """The names Python 3's unpickler imports for a protocol 0-2 pickle written by
    Python 2 (``fix_imports``): __builtin__ -> builtins, copy_reg -> copyreg, ..."""
    if name is not None and (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def unsafe_reason(module: str, name: str | None) -> str | None:
    """Why calling ``module.name`` from a pickle is unsafe, or None if it is not listed."""
    # the name as written first, then as Python 3 maps it: a set here made the reason (not
    # the verdict) depend on PYTHONHASHSEED
    for mod, attr in dict.fromkeys(((module, name), _py2_names(module, name))):
        reason = _listed(mod, attr)
        if reason is not None:
            return reason
    return None


def _listed(module: str, name: str | None) -> str | None:
    parts = name.split(".") if name else []
    # a dotted name reaches attributes of attributes: every prefix of module + name path
    # that is a listed module is what really gets imported or reached
    full = module.split(".") + parts
    for i in range(1, len(full) + 1):
        mod = ".".join(full[:i])
        entry = _UNSAFE.get(mod)
        if entry is None:
            continue
        rest = full[i:]
        if _ANY in entry:
            return entry[_ANY]
        if rest and rest[0] in entry:
            return entry[rest[0]]
        if len(rest) > 1 and _METHODS in entry:
            return entry[_METHODS]
    for part in parts[:-1] if len(parts) > 1 else []:
        top = _UNSAFE.get(part)
        if top is not None and _ANY in top:
            return f"reaches the {part} module: " + top[_ANY]
    for part in parts:
        if part in _REACH:
            return f"reaches past the named object through {part}"
    if parts and parts[-1] in _RUNNERS:
        return f"{parts[-1]} runs code or programs"
    if "__main__" in full[1:]:
        return "importing a package's __main__ runs it"
    return None


# the hint of every unsafe finding, from the opcodes or from byte patterns
_HINT = (
    "do not load this file; re-save the model from trusted code, or inspect it with "
    "`python -m pickletools` first"
)

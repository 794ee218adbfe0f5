"""``python -m envbuild_serve [serve|predict|load|openapi]``; see ``--help``."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import time

from . import __version__
from .config import ENV_VARS, ConfigError, load_config
from .stack import call


def _logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def named_user(environ: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    """Spark's Hadoop login fails for a user without a name, and an arbitrary UID (the
    smoke test's, OpenShift's) has no passwd entry. With ENVBUILD_NSS_WRAPPER=1 (the image
    installs libnss-wrapper), write one under HOME and preload nss_wrapper, so the JVM the
    model starts sees it. Returns the passwd file written, if any."""
    import pwd

    if environ.get("ENVBUILD_NSS_WRAPPER") != "1":
        return None
    uid, gid = os.getuid(), os.getgid()
    try:
        pwd.getpwuid(uid)
        return None
    except KeyError:
        pass
    home = environ.get("HOME") or "/tmp"
    path = os.path.join(home, ".envbuild-passwd")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"envbuild:x:{uid}:{gid}:envbuild:{home}:/bin/sh\n")
    environ["LD_PRELOAD"] = "libnss_wrapper.so"
    environ["NSS_WRAPPER_PASSWD"] = path
    environ["NSS_WRAPPER_GROUP"] = "/etc/group"
    return path


def main(argv: list[str] | None = None) -> int:
    env_help = "\n".join(f"  {k:<20} {d:<20} {m}" for k, (d, m) in ENV_VARS.items())
    ap = argparse.ArgumentParser(
        prog="python -m envbuild_serve",
        description="Serve an MLflow model with MLflow's scoring protocol.",
        epilog="environment variables (default, meaning):\n" + env_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--version", action="version", version=f"envbuild-serve {__version__}")
    sub = ap.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve over HTTP (the default)")
    pred = sub.add_parser(
        "predict",
        help="answer one /invocations payload without HTTP; prints the response body, "
        "exits 0 (200), 2 (4xx) or 1 (5xx)",
    )
    pred.add_argument("--input", default="-", help="payload file, - for stdin")
    pred.add_argument("--content-type", default="application/json")
    sub.add_parser("load", help="load the model and exit: 0 when it loaded, 1 when it did not")
    sub.add_parser("openapi", help="print the OpenAPI document")
    args = ap.parse_args(argv)
    command = args.command or "serve"

    try:
        config = load_config()
    except ConfigError as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        return 2
    _logging(config.log_level)
    log = logging.getLogger("envbuild.serve")
    named_user()

    # Imported here: the protocol modules are only needed once the settings are valid.
    from .protocol import LoadError, Scorer

    server = None
    if command == "serve":
        if config.http == "uvicorn":
            from .asgi import find_uvicorn

            problem = find_uvicorn()  # before the model loads, as a port in use is
            if problem is not None:
                log.error("%s", problem)
                return 3
        from .server import listen

        # Bound before the load (see server.py): a port in use fails now, not after it.
        server = listen(config)
        if server is None:
            return 3

    # Importing MLflow and the model's libraries creates hundreds of thousands of long-lived
    # objects; the cyclic collector, left on, spends ~0.35 s of a ~2.4 s start (docker run to
    # first /ping, sklearn-credit) rescanning them. It is off while loading; then the
    # survivors are frozen (never scanned again, so forked workers' collections do not dirty
    # their shared pages) and collection resumes. The price: cyclic garbage made during the
    # load is kept (1,527 objects for sklearn-credit; a full collection to free it would cost
    # 0.15 s before the first /ping).
    gc.disable()
    started = time.perf_counter()
    try:
        scorer = Scorer(config.model_dir)
    except LoadError as exc:
        log.debug("load failure", exc_info=True)
        log.error("%s", exc)
        if server is not None:
            server.server_close()
        return 1
    finally:
        gc.freeze()
        gc.enable()
    if command == "load":
        scorer.environment_warnings()
        log.info("the model loaded in %.2f s", time.perf_counter() - started)
        return 0
    if command == "openapi":
        from .server import openapi_for

        print(json.dumps(openapi_for(scorer), indent=1))
        return 0
    if command == "predict":
        if args.input == "-":
            body = sys.stdin.buffer.read()
        else:
            with open(os.path.expanduser(args.input), "rb") as f:
                body = f.read()
        scorer.environment_warnings()
        resp = scorer.invoke(body, args.content_type)
        sys.stdout.write(resp.body.decode("utf-8") + "\n")
        return 0 if resp.status == 200 else 2 if resp.status < 500 else 1
    from .server import serve

    return serve(config, scorer, started, server)


if __name__ == "__main__":
    # Through stack.call: the model load would otherwise run at a frame-stack depth that
    # CPython 3.11 and later can keep unmapping and remapping (see stack.py).
    sys.exit(call(main))

"""The smoke test: a prediction on the model's input example, compared with its stored
predictions, or without an example on a payload synthesized from its signature
(payload.py), or without either the model's load alone; in the image through
``docker exec`` in a confined container, in a venv through its own interpreter in
envbuild/_adapters/sandbox.py. A model that does not load always fails it."""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from envbuild._adapters import docker as _docker
from envbuild._adapters import sandbox as _sandbox
from envbuild._paths import inside
from envbuild.build.payload import synthesize
from envbuild.errors import FailedError, InputError
from envbuild.findings import Code, Finding, Location, Severity
from envbuild.read import ModelFolder
from envbuild.render import HEALTH_PATH, server_package

log = logging.getLogger("envbuild")

EB806 = Code(
    "EB806",
    Severity.WARNING,
    "the model refused the smoke payload synthesized from its signature: only its load is proven",
)


@dataclass(frozen=True, kw_only=True)
class SmokeCase:
    payload: bytes
    content_type: str
    source: str  # the file the payload came from
    expected: Any  # the stored predictions, or None
    expected_file: str | None
    # made from the signature (payload.py): what it holds, and the document itself
    synthesized: str | None = None
    document: Any = None


Proof = Literal[
    "loaded",
    "matched stored predictions",
    "predicted (no stored predictions)",
    "predicted on a synthesized payload",
]


@dataclass(frozen=True, kw_only=True)
class SmokeResult:
    ok: bool
    source: str | None
    expected_file: str | None
    compared: bool
    predictions: Any
    seconds_to_health: float | None
    message: str
    # what confined the proof: the image smoke's container as the engine reports it; the
    # venv smoke's {"kind": "bwrap" | "process"} (envbuild/_adapters/sandbox.py)
    sandbox: Mapping[str, Any] | None = None
    synthesized: Any = None  # the payload made from the signature, when it was
    # why the model's answer to the synthesized payload is not a proof (it loaded, then
    # refused made-up values): the api reports it as EB806
    refused: str | None = None

    @property
    def proof(self) -> Proof:
        """How much the smoke test showed: no payload (``source`` None), or one the model
        refused, leaves the load alone; a prediction without stored predictions shows it
        answers."""
        if self.compared:
            return "matched stored predictions"
        if self.source is None or self.refused is not None:
            return "loaded"
        if self.synthesized is not None:
            return "predicted on a synthesized payload"
        return "predicted (no stored predictions)"

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "proof": self.proof,
            "input": self.source,
            "synthesized": self.synthesized,
            "refused": self.refused,
            "expected": self.expected_file,
            "compared": self.compared,
            "seconds_to_health": round(self.seconds_to_health, 2)
            if self.seconds_to_health is not None
            else None,
            "message": self.message,
            "sandbox": dict(self.sandbox) if self.sandbox is not None else None,
        }

    def refusal_finding(self) -> Finding | None:
        """EB806 when the model refused the synthesized payload (proof: only "loaded")."""
        if self.refused is None:
            return None
        return EB806.at(
            Location(file="MLmodel", field="signature"),
            f"the model loaded but refused the smoke payload made from MLmodel's signature "
            f"({self.refused}); only its load is proven",
            hint="log the model with an input_example so the smoke test can predict on it",
        )

    @classmethod
    def no_example(
        cls,
        seconds_to_health: float | None,
        message: str,
        *,
        sandbox: Mapping[str, Any] | None = None,
    ) -> SmokeResult:
        """Passed on the model's load alone (proof "loaded"): it has no input example."""
        return cls(
            ok=True,
            source=None,
            expected_file=None,
            compared=False,
            predictions=None,
            seconds_to_health=seconds_to_health,
            message=message,
            sandbox=sandbox,
        )

    @classmethod
    def answered(
        cls,
        case: SmokeCase,
        predictions: Any,
        message: str,
        *,
        seconds: float | None,
        sandbox: Mapping[str, Any] | None,
        refused: str | None = None,
    ) -> SmokeResult:
        """Passed on a prediction for ``case`` (compared when it stores predictions), or
        on the load alone when the model ``refused`` a synthesized payload."""
        return cls(
            ok=True,
            source=case.source,
            expected_file=case.expected_file,
            compared=case.expected is not None and refused is None,
            predictions=predictions,
            seconds_to_health=seconds,
            message=message,
            sandbox=sandbox,
            synthesized=case.document,
            refused=refused,
        )


_SERVING_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def smoke_case(folder: ModelFolder) -> SmokeCase | None:
    """What to POST and what to expect: expected_predictions.json names its input; else
    the serving input example; else the input example wrapped by its type; else a payload
    synthesized from the signature (payload.py); None with neither."""
    case = _example_case(folder)
    if case is not None:
        return case
    made = synthesize(
        folder.mlmodel.signature,
        type_hints=folder.mlmodel.extra.get("is_signature_from_type_hint") is True,
    )
    if made is None:
        return None
    return SmokeCase(
        payload=json.dumps(made.document).encode(),
        content_type="application/json",
        source="MLmodel",
        expected=None,
        expected_file=None,
        synthesized=made.described,
        document=made.document,
    )


def _example_case(folder: ModelFolder) -> SmokeCase | None:
    root = folder.path
    expected: Any = None
    expected_file: str | None = None
    source: str | None = None
    exp_path = root / "expected_predictions.json"
    if exp_path.is_file():
        try:
            doc = json.loads(exp_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(
                f"expected_predictions.json is not JSON: {exc}",
                location=Location(file="expected_predictions.json"),
                code="EB802",
            ) from None
        if isinstance(doc, dict) and "predictions" in doc:
            expected, expected_file = doc["predictions"], "expected_predictions.json"
            source = str(doc["input"]) if doc.get("input") else None
    example = folder.input_example
    if source is None and example is not None:
        source = example.serving_file or example.file
    if source is None:
        return None
    path = inside(root, source, location=Location(file="expected_predictions.json"))
    if not path.is_file():
        return None
    if source.endswith(".csv"):
        return SmokeCase(
            payload=path.read_bytes(),
            content_type="text/csv",
            source=source,
            expected=expected,
            expected_file=expected_file,
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    if not (isinstance(data, dict) and any(k in data for k in _SERVING_KEYS)):
        orient = example.pandas_orient if example else None
        kind = example.type if example else None
        if kind == "dataframe":
            data = {"dataframe_records" if orient == "records" else "dataframe_split": data}
        else:
            data = {"inputs": data}
    return SmokeCase(
        payload=json.dumps(data).encode(),
        content_type="application/json",
        source=source,
        expected=expected,
        expected_file=expected_file,
    )


def _one_column(items: list[Any]) -> list[Any] | None:
    """The values of one-column records (every row a dict of the same single key), as
    MLflow's server renders a pandas Series (``pd.DataFrame(series).to_dict("records")``);
    else None."""
    if not items or not all(isinstance(r, dict) and len(r) == 1 for r in items):
        return None
    keys = {next(iter(r)) for r in items}
    return [next(iter(r.values())) for r in items] if len(keys) == 1 else None


def compare(expected: Any, actual: Any, *, rel: float = 1e-5, abs_: float = 1e-6) -> str | None:
    """None when ``actual`` matches ``expected`` (numbers within tolerance), else where it
    first differs. Stored values match a Series the server answered as one-column records
    (a file written from ``model.predict`` holds the Series' values)."""

    def walk(e: Any, a: Any, where: str) -> str | None:
        if isinstance(e, list) and isinstance(a, list) and not any(isinstance(x, dict) for x in e):
            a = _one_column(a) or a
        if isinstance(e, bool) or isinstance(a, bool):
            return None if e == a else f"{where}: expected {e!r}, got {a!r}"
        if isinstance(e, int | float) and isinstance(a, int | float):
            if isinstance(e, float) and isinstance(a, float) and math.isnan(e) and math.isnan(a):
                return None
            ok = math.isclose(float(e), float(a), rel_tol=rel, abs_tol=abs_)
            return None if ok else f"{where}: expected {e!r}, got {a!r}"
        if isinstance(e, list) and isinstance(a, list):
            if len(e) != len(a):
                return f"{where}: expected {len(e)} items, got {len(a)}"
            for i, (x, y) in enumerate(zip(e, a, strict=True)):
                diff = walk(x, y, f"{where}[{i}]")
                if diff:
                    return diff
            return None
        if isinstance(e, dict) and isinstance(a, dict):
            if set(e) != set(a):
                return f"{where}: expected keys {sorted(e)}, got {sorted(a)}"
            for k in e:
                diff = walk(e[k], a[k], f"{where}.{k}")
                if diff:
                    return diff
            return None
        return None if e == a else f"{where}: expected {e!r}, got {a!r}"

    return walk(expected, actual, "predictions")


def check_response(case: SmokeCase | None, status: int, body: bytes) -> tuple[bool, Any, str]:
    if status != 200:
        return False, None, f"/invocations answered HTTP {status}: {body[:300]!r}"
    try:
        doc = json.loads(body)
    except ValueError:
        return False, None, f"/invocations answered non-JSON: {body[:200]!r}"
    if not isinstance(doc, dict) or "predictions" not in doc:
        return False, None, "/invocations answered without a 'predictions' field"
    predictions = doc["predictions"]
    if case is not None and case.expected is not None:
        diff = compare(case.expected, predictions)
        if diff:
            return False, predictions, f"predictions differ from {case.expected_file}: {diff}"
        return True, predictions, f"predictions match {case.expected_file}"
    if case is not None and case.synthesized is not None:
        return (
            True,
            predictions,
            (f"a valid response to a payload synthesized from the signature ({case.synthesized})"),
        )
    return True, predictions, "a valid response (no stored predictions to compare)"


# A model that answers made-up values with one of these is missing part of its
# environment (a module imported at predict time, an attribute of another version of a
# library): that fails the smoke test. Any other refusal (400, or a ValueError of a value
# the model never saw) is about the values, and leaves the proof at the load.
_ENVIRONMENT_ERRORS = frozenset(
    {"ImportError", "ModuleNotFoundError", "AttributeError", "NameError"}
)
_RAISED = re.compile(r"^the model raised (?P<type>[A-Za-z_][\w.]*)")


def refusal(case: SmokeCase | None, status: int, body: bytes) -> str | None:
    """Why the model's error answer to a synthesized payload leaves only the load proven,
    or None when the answer fails the smoke test (not synthesized, not the server's JSON
    error, or an error that says the environment is incomplete)."""
    if case is None or case.synthesized is None or status == 200:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("message"), str):
        return None
    message = str(doc["message"])
    raised = _RAISED.match(message)
    if status >= 500 and raised and raised["type"].rsplit(".", 1)[-1] in _ENVIRONMENT_ERRORS:
        return None
    return f"HTTP {status}: {message[:300]}"


_SMOKE_CLIENT = Path(__file__).parent.parent / "_scripts" / "smoke_client.py"
_ARG_CHUNK = 96_000  # base64 characters per argv item (Linux: 128 KiB per item)
_EXEC_ARGS = 8  # items per exec, well under ARG_MAX (2 MiB with the environment)
_IMAGE_PYTHON = "/opt/envbuild/venv/bin/python"
GIB = 1024**3
_APPEND = (
    "import base64, sys\n"
    "with open(sys.argv[1], 'ab') as f: f.write(base64.b64decode(''.join(sys.argv[2:])))"
)


def sandbox_for(folder: ModelFolder) -> _docker.Sandbox:
    """The smoke container's confinement: a random uid in 100000-199999 with group 0 (as
    OpenShift assigns one: the image must not depend on its own user), and memory of
    2 GiB or 1 GiB plus three times the model folder's size when that is more."""
    import secrets

    size = sum(p.stat().st_size for p in folder.path.rglob("*") if p.is_file())
    return _docker.Sandbox(
        user=f"{100000 + secrets.randbelow(100000)}:0", memory=max(2 * GIB, GIB + 3 * size)
    )


def smoke_image(
    image: str,
    folder: ModelFolder,
    *,
    client: Any = None,
    timeout: float = 180,
    sandbox: _docker.Sandbox | None = None,
) -> SmokeResult:
    """Run ``image`` in the sandbox (``sandbox_for``), wait for /ping, POST the input
    example to /invocations, compare, and always remove the container. The client runs
    inside the container through ``docker exec`` with the image's own interpreter: there is
    no network to publish a port on, and no host path is involved. Failure raises
    FailedError with the log tail."""
    c = client or _docker.client()
    case = smoke_case(folder)
    box = sandbox or sandbox_for(folder)
    start = time.monotonic()
    running = _docker.run_sandboxed(c, image, box, labels={"io.envbuild.smoke": image})
    try:
        applied = _docker.confinement(running)
        log.info(
            "smoke: container as user %s, network %s, read-only, no capabilities",
            applied["user"],
            applied["network"],
        )
        payload_file = "-"
        chunks: list[str] = []
        if case is not None:
            encoded = base64.b64encode(case.payload).decode("ascii")
            chunks = [encoded[i : i + _ARG_CHUNK] for i in range(0, len(encoded), _ARG_CHUNK)]
            if len(chunks) > _EXEC_ARGS:  # too long for one command line: stage it in /tmp
                payload_file = "/tmp/.envbuild-smoke-payload"
                staged, chunks = chunks[:-_EXEC_ARGS], chunks[-_EXEC_ARGS:]
                for i in range(0, len(staged), _EXEC_ARGS):
                    done = _docker.exec_in(
                        running, [_IMAGE_PYTHON, "-I", "-c", _APPEND, payload_file,
                                  *staged[i : i + _EXEC_ARGS]],
                    )  # fmt: skip
                    if done.exit_code != 0:
                        raise _smoke_failure(running, _exec_problem(running, done), start)
        exec_at = time.monotonic()
        remaining = max(1.0, timeout - (exec_at - start))
        done = _docker.exec_in(
            running,
            [_IMAGE_PYTHON, "-I", "-c", _SMOKE_CLIENT.read_text(encoding="utf-8"),
             HEALTH_PATH, f"{remaining:.1f}", case.content_type if case else "", payload_file,
             *chunks],
        )  # fmt: skip
        reply = _client_reply(done)
        if reply is None:
            raise _smoke_failure(running, _exec_problem(running, done), start)
        if reply["healthy_after"] is None:
            raise _smoke_failure(running, "the container never answered /ping", start)
        # from the container's start: until the client started, then what it measured
        healthy_after = exec_at - start + float(reply["healthy_after"])
        log.info("smoke: /ping answered after %.1f s", healthy_after)
        if case is None:
            return SmokeResult.no_example(
                healthy_after,
                f"loaded (/ping answers once it has); {_NOTHING_TO_PREDICT}",
                sandbox=applied,
            )
        if reply["error"]:
            raise _smoke_failure(running, str(reply["error"]), start)
        body = base64.b64decode(str(reply["body"]))
        ok, predictions, message = check_response(case, int(reply["status"]), body)
        if not ok:
            reason = refusal(case, int(reply["status"]), body)
            if reason is None:
                raise _smoke_failure(running, message, start)
            return SmokeResult.answered(
                case, None, _refused_message(reason), seconds=healthy_after,
                sandbox=applied, refused=reason,
            )  # fmt: skip
        log.info("smoke: %s", message)
        return SmokeResult.answered(
            case, predictions, message, seconds=healthy_after, sandbox=applied
        )
    finally:
        _docker.remove(running)


_NOTHING_TO_PREDICT = "the model has no input example, nor a signature to make a payload from"


def _refused_message(reason: str) -> str:
    return f"loaded; the payload synthesized from the signature was refused ({reason})"


def _client_reply(done: _docker.Exec) -> dict[str, Any] | None:
    if done.exit_code != 0:
        return None
    try:
        doc = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return doc if isinstance(doc, dict) else None


def _exec_problem(running: _docker.Running, done: _docker.Exec) -> str:
    # a server that dies takes the client with it, a moment before the engine says so
    deadline = time.monotonic() + 3
    while (state := _docker.status(running)) not in ("exited", "dead"):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if state in ("exited", "dead"):
        return f"the container {state} (exit code {_docker.exit_code(running)})"
    err = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
    return f"the smoke client in the container failed ({done.exit_code}): " + (
        " | ".join(err) or "no output"
    )


def _smoke_failure(running: _docker.Running, message: str, start: float) -> FailedError:
    tail = _docker.logs_tail(running).strip().splitlines()[-15:]
    return FailedError(
        f"smoke test failed after {time.monotonic() - start:.1f} s: {message}",
        hint="container log tail:\n    " + "\n    ".join(tail or ["(empty)"]),
        code="EB802",
    )


def smoke_venv(path: Path, folder: ModelFolder, *, timeout: float = 600) -> SmokeResult:
    """Load the model in the venv's own interpreter, in the sandbox (envbuild/_adapters/sandbox.py),
    and predict on the input example or a payload synthesized from the signature; with
    neither, only load it. The venv is writable (the imports write its bytecode, see
    install_venv), the model folder is not."""
    case = smoke_case(folder)
    root = path.resolve()
    python = root / "bin" / "python"
    model_dir = folder.path.resolve()
    argv = [str(python), "-m", server_package()]
    argv += (
        ["load"]
        if case is None
        else ["predict", "--input", "-", "--content-type", case.content_type]
    )
    with _sandbox.Sandbox(
        writable=[root], readable=_sandbox.interpreter_roots(python), readonly=[model_dir]
    ) as box:
        ran = box.run(
            argv,
            stdin=case.payload if case is not None else None,
            env={
                "ENVBUILD_MODEL_DIR": str(model_dir),
                # inside the sandbox's temp dir: nothing reaches ~/.mlflow or ./mlruns
                "MLFLOW_TRACKING_URI": (box.tmp / "mlruns").as_uri(),
                "MLFLOW_DISABLE_ENV_CREATION": "true",
                "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
            },
            timeout=timeout,
        )
    what = "loading the model" if case is None else "smoke prediction"
    log.info("smoke: %s in the venv ran under the %s sandbox", what, ran.sandbox)
    if ran.timed_out:
        raise FailedError(
            f"{what} in the venv did not finish within {timeout:.0f} s",
            hint="its output:\n    " + "\n    ".join(ran.stderr_tail() or ["(empty)"]),
            code="EB802",
        )
    if case is None:
        if ran.returncode != 0:
            raise FailedError(
                "the model did not load in the venv",
                hint="its output:\n    " + "\n    ".join(ran.stderr_tail() or ["(empty)"]),
                code="EB802",
            )
        return SmokeResult.no_example(
            ran.seconds, f"loaded; {_NOTHING_TO_PREDICT}", sandbox={"kind": ran.sandbox}
        )
    lines = ran.stdout.strip().splitlines()
    # predict prints the response body: 2 for a 4xx, 1 for a 5xx or (no body) no load
    if ran.returncode in (1, 2) and lines:
        status = 400 if ran.returncode == 2 else 500
        reason = refusal(case, status, lines[-1])
        if reason is not None:
            return SmokeResult.answered(
                case, None, _refused_message(reason), seconds=ran.seconds,
                sandbox={"kind": ran.sandbox}, refused=reason,
            )  # fmt: skip
    if ran.returncode == 2:  # the server answered 4xx: the payload was refused
        ok, predictions, message = check_response(case, 400, ran.stdout)
        raise FailedError(f"smoke prediction in the venv: {message}", code="EB802")
    if ran.returncode != 0:
        raise FailedError(
            "smoke prediction in the venv failed"
            if lines
            else "the model did not load in the venv",
            hint="its output:\n    " + "\n    ".join(ran.stderr_tail() or ["(empty)"]),
            code="EB802",
        )
    ok, predictions, message = check_response(case, 200, lines[-1] if lines else b"")
    if not ok:
        raise FailedError(f"smoke prediction in the venv: {message}", code="EB802")
    return SmokeResult.answered(
        case, predictions, message, seconds=ran.seconds, sandbox={"kind": ran.sandbox}
    )

"""Index credentials: found again for the lock's index URLs (env files, --secret-file,
UV_INDEX_*/PIP_INDEX_URL), passed as BuildKit secrets, refused without BuildKit (EB403),
kept out of the model files copied into the image, and reported by check (EB413). The
build's failure against an index that refuses them is one line without the password."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from envbuild._adapters import buildkit as _buildkit
from envbuild.credentials import collect, for_url, index_findings, read_secret_file
from envbuild.errors import InputError
from envbuild.findings import Location
from envbuild.read import PipOption, read_model
from envbuild.render import render
from tests.helpers import EXAMPLES, run_envbuild
from tests.unit.test_render import FAKE_UV, GOLDEN, UV_REQ, lock_view

PRIVATE = "http://127.0.0.1:8123/simple/"
WITH = "http://alice:pw-9f1@127.0.0.1:8123/simple/"


def option(value: str, option: str = "--extra-index-url") -> PipOption:
    return PipOption(option=option, value=value, location=Location(file="requirements.txt", line=1))


def test_credentials_are_matched_by_scheme_host_and_port() -> None:
    found = collect([PRIVATE], {"UV_INDEX": f"team={WITH} https://pypi.org/simple"})
    assert found == (WITH,)
    assert for_url(PRIVATE, found) == WITH
    assert for_url("http://127.0.0.1:8123/other/", found) == (
        "http://alice:pw-9f1@127.0.0.1:8123/other/"
    )
    assert for_url("http://127.0.0.1:9999/simple/", found) is None
    assert for_url("https://127.0.0.1:8123/simple/", found) is None
    # a ${VAR} reference in the env file is expanded from the environment
    env = {"IDX_USER": "bob", "IDX_TOKEN": "t0k"}
    ref = "http://${IDX_USER}:${IDX_TOKEN}@127.0.0.1:8123/simple/"
    assert collect([ref], env) == ("http://bob:t0k@127.0.0.1:8123/simple/",)
    assert collect([ref], {}) == ()
    # the env file's own line wins over the environment
    assert collect([WITH], {"PIP_INDEX_URL": "http://x:y@127.0.0.1:8123/simple/"})[0] == WITH


def test_a_named_uv_index_takes_its_credentials_from_uv_index_name_variables() -> None:
    env = {
        "UV_INDEX": "team-ml=http://127.0.0.1:8123/simple/ https://pypi.org/simple",
        "UV_INDEX_TEAM_ML_USERNAME": "alice",
        "UV_INDEX_TEAM_ML_PASSWORD": "pw/9f1",  # quoted in the URL, as uv sends it
    }
    found = collect([PRIVATE], env)
    assert found == ("http://alice:pw%2F9f1@127.0.0.1:8123/simple/",)
    assert for_url(PRIVATE, found) == found[0]
    # a name without variables, or a URL that carries its own, is left as it is
    assert collect([], {"UV_INDEX": "other=http://127.0.0.1:8123/simple/"}) == ()
    assert collect([], {**env, "UV_INDEX": f"team-ml={WITH}"}) == (WITH,)


def test_a_secret_file_holds_urls_with_credentials_only() -> None:
    assert read_secret_file(f"# team index\n\n{WITH}\n", file="s") == (WITH,)
    with pytest.raises(InputError) as exc:
        read_secret_file(f"{PRIVATE}\n", file="idx.secret")
    assert exc.value.location is not None and exc.value.location.line == 1


def lock_naming(url: str) -> str:
    return f"--extra-index-url {url}\n" + (GOLDEN / "locks" / "pyfunc-custom.lock").read_text()


def test_the_lock_without_credentials_gets_them_back_as_a_secret(copy_model) -> None:
    # the case: the lock keeps the URL without the password; the env file had it
    model = copy_model("pyfunc-custom")
    req = model / "requirements.txt"
    req.write_text(f"--extra-index-url {WITH}\n{req.read_text()}")
    folder = read_model(model)
    lock = lock_view("pyfunc-custom", text=lock_naming(PRIVATE))
    args = dict(command="envbuild image m", uv_binary=FAKE_UV, uv_requirement=UV_REQ)
    plan = render(folder, lock, buildkit=True, credentials=collect([WITH], {}), **args)  # type: ignore[arg-type]
    assert [(s.id, s.env, s.value) for s in plan.secrets] == [
        ("envbuild_index_0", "UV_INDEX", WITH)
    ]
    assert "--mount=type=secret,id=envbuild_index_0" in plan.dockerfile
    for f in plan.files:
        assert b"pw-9f1" not in f.read(), f.path
    copied = next(f for f in plan.files if f.path == "model/requirements.txt").read().decode()
    assert copied.startswith(f"--extra-index-url {PRIVATE}\n")
    # without BuildKit they could only travel in a layer: refused (EB403 used not to fire)
    with pytest.raises(InputError) as exc:
        render(folder, lock, buildkit=False, credentials=(WITH,), **args)  # type: ignore[arg-type]
    assert exc.value.code == "EB403" and "pw-9f1" not in str(exc.value)
    # no credentials anywhere: the URL goes in as it is
    plain = render(folder, lock, buildkit=False, **args)  # type: ignore[arg-type]
    assert not plain.secrets and f"--index {PRIVATE}" in plain.dockerfile


def test_model_files_without_credentials_are_copied_as_they_are() -> None:
    folder = read_model(EXAMPLES / "pyfunc-custom")
    plan = render(
        folder, lock_view("pyfunc-custom"), command="c", uv_binary=FAKE_UV, uv_requirement=UV_REQ
    )
    req = next(f for f in plan.files if f.path == "model/requirements.txt")
    assert req.source is not None and req.data is None


class _Auth(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.headers.get("Authorization") == "Basic YWxpY2U6cHctOWYx"  # alice:pw-9f1
        self.send_response(200 if ok else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def index() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Auth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_check_reports_an_index_the_build_could_not_log_in_to(index: int) -> None:
    url = f"http://127.0.0.1:{index}/simple/"
    creds = f"http://alice:pw-9f1@127.0.0.1:{index}/simple/"
    assert index_findings([option(creds)], {}, probe=True) == []
    assert index_findings([option(url)], {"UV_INDEX_URL": creds}, probe=True) == []
    [anonymous] = index_findings([option(url)], {}, probe=True)
    assert anonymous.code == "EB413" and "401 to no credentials" in anonymous.message
    wrong = f"http://alice:nope@127.0.0.1:{index}/simple/"
    [refused] = index_findings([option(wrong)], {}, probe=True)
    assert "credentials found" in refused.message and "nope" not in refused.message
    ref = f"http://alice:${{IDX_TOKEN}}@127.0.0.1:{index}/simple/"
    [unset] = index_findings([option(ref)], {}, probe=False)
    assert "IDX_TOKEN, which is not set" in unset.message
    assert index_findings([option(url)], {}, probe=False) == []  # --offline asks nothing
    assert index_findings([option(url)], {}, probe=True, secret_urls=[creds]) == []


def test_check_secret_file_gives_the_credentials_the_build_will_have(
    index: int, copy_model, tmp_path
) -> None:
    """`envbuild check --secret-file` asks the index with the file's credentials, as
    `envbuild image --secret-file` builds with them: EB413 without, none with."""
    model = copy_model("pyfunc-custom")
    reqs = model / "requirements.txt"
    reqs.write_text(f"--extra-index-url http://127.0.0.1:{index}/simple/\n" + reqs.read_text())
    secret = tmp_path / "index.secret"
    secret.write_text(f"http://alice:pw-9f1@127.0.0.1:{index}/simple/\n")
    args = ("check", str(model), "--offline", "--ignore", "EB3xx,EB2xx", "--format", "json")
    # --offline asks no index: the probe runs only without it, so ask the stage directly
    from envbuild.check.settings import options_from
    from envbuild.check.stages import indexes

    folder = read_model(model)
    [without] = indexes(folder, options_from({}))[0]
    assert without.code == "EB413" and without.location is not None
    assert str(without.location.file).endswith("requirements.txt")
    assert indexes(folder, options_from({}, secret_file=secret))[0] == []
    done = run_envbuild(*args, "--secret-file", str(secret))
    assert done.returncode == 0, done.stderr
    assert "pw-9f1" not in done.stdout + done.stderr
    bad = tmp_path / "bad.secret"
    bad.write_text(f"http://127.0.0.1:{index}/simple/\n")
    refused = run_envbuild(*args, "--secret-file", str(bad))
    assert refused.returncode == 2 and "bad.secret:1 is not an index URL" in refused.stderr


def test_a_refused_build_is_one_line_without_the_password() -> None:
    tail = [
        "#9 12.3 Using Python 3.11.2 environment at: /opt/envbuild/venv",
        f"#9 12.9 error: Failed to fetch: `{WITH}envbuild-private-probe/`",
        "#9 12.9 hint: An index (http://127.0.0.1:8123/simple/) returned a 403 Forbidden error.",
        "ERROR: executor failed running [/bin/sh -c ...]: exit code: 2",
    ]
    masked = [_buildkit.mask(line, ["pw-9f1"]) for line in tail]
    err = _buildkit._failure(masked)
    assert err.code == "EB801" and "\n" not in err.message
    assert err.message.startswith("docker build failed: the package index refused the credentials")
    assert "403 Forbidden" in err.message
    assert "pw-9f1" not in err.message + err.hint

"""Model locations, offline: parsing, credentials, the cache's atomicity, local folders.

The real tracking server is in tests/integration/test_source_mlflow.py; here the MLflow
adapter is replaced by a fake only to drive the error paths of the cache (a download that
fails or is interrupted half-way)."""

from __future__ import annotations

import importlib.abc
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from envbuild._adapters import mlflow as _mlflow
from envbuild._redact import redact_uri
from envbuild.cli import main
from envbuild.sources import (
    CODES,
    SourceError,
    cache_root,
    materialize,
    parse,
    server_id,
)
from tests.helpers import EXAMPLES

EXAMPLE = EXAMPLES / "sklearn-credit"
RUN = "0123456789abcdef0123456789abcdef"


# --------------------------------------------------------------------------------------
# parsing


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("examples/sklearn-credit", {"kind": "local", "path": Path("examples/sklearn-credit")}),
        ("/abs/model", {"kind": "local", "path": Path("/abs/model")}),
        ("file:///abs/my%20model", {"kind": "file", "path": Path("/abs/my model")}),
        ("file://localhost/abs/m", {"kind": "file", "path": Path("/abs/m")}),
        ("file:rel/m", {"kind": "file", "path": Path("rel/m")}),
        (f"runs:/{RUN}/model", {"kind": "runs", "run_id": RUN, "artifact_path": "model"}),
        (f"runs:/{RUN}/a/b/", {"kind": "runs", "run_id": RUN, "artifact_path": "a/b"}),
        (f"runs:/{RUN}", {"kind": "runs", "run_id": RUN, "artifact_path": ""}),
        ("models:/credit/3", {"kind": "models", "name": "credit", "version": "3"}),
        ("models:/credit/003", {"kind": "models", "name": "credit", "version": "3"}),
        ("models:/credit@champion", {"kind": "models", "name": "credit", "alias": "champion"}),
        ("models:/a@b@c", {"kind": "models", "name": "a@b", "alias": "c"}),
        ("models:/credit/latest", {"kind": "models", "name": "credit", "latest": True}),
        ("models:/credit/LATEST", {"kind": "models", "name": "credit", "latest": True}),
        ("models:/credit/Production", {"kind": "models", "name": "credit", "stage": "Production"}),
        ("models:/m-0123abcd", {"kind": "models", "model_id": "m-0123abcd"}),
        ("s3://bucket/path/model", {"kind": "artifact"}),
        ("mlflow-artifacts:/0/abc/artifacts/model", {"kind": "artifact"}),
        ("https://host/x/model", {"kind": "artifact"}),
    ],
)
def test_parse(location: str, expected: dict[str, Any]) -> None:
    ref = parse(location)
    for key, value in expected.items():
        assert getattr(ref, key) == value, key
    assert ref.raw == location


@pytest.mark.parametrize(
    "location",
    [
        "runs:/",
        "runs:",
        "runs:/bad id!/model",
        "runs://profile@databricks/abc/model",
        f"runs:/{RUN}/../secrets",
        "models:/",
        "models:",
        "models:/a/b/c",
        "models:/credit/",
        "models:/credit@",
        "models:/@alias",
        "models://profile@databricks/credit/1",
        "file://otherhost/x",
        "file://",
    ],
)
def test_parse_rejects_malformed_uris(location: str) -> None:
    with pytest.raises(SourceError) as err:
        parse(location)
    assert err.value.code == "EB600"
    assert err.value.exit_code == 2
    assert err.value.hint
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------------------
# credentials


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("https://user:tok3n@host/x", "tok3n"),
        ("http://only-token@127.0.0.1:5000", "only-token"),
        ("s3://b/m?X-Amz-Signature=abcdef&X-Amz-Credential=AKIA1", "abcdef"),
        ("error talking to https://u:pw9@h/api/2.0?token=zz1 now", "pw9"),
        ("error talking to https://u:pw9@h/api/2.0?token=zz1 now", "zz1"),
        ("postgresql://mlflow:dbpass@db:5432/mlflow", "dbpass"),
    ],
)
def test_redact_uri_masks_credentials(text: str, secret: str) -> None:
    masked = redact_uri(text)
    assert secret not in masked
    assert "****" in masked


def test_redact_uri_keeps_plain_uris() -> None:
    for text in ("models:/credit/1", f"runs:/{RUN}/model", "http://127.0.0.1:5000", "/a/b"):
        assert redact_uri(text) == text


def test_server_id_drops_credentials_and_normalises() -> None:
    assert server_id("HTTP://user:tok@Host.Example:5000/prefix/?t=1") == (
        "http://host.example:5000/prefix"
    )
    assert server_id("http://host:5000") == server_id("http://other:x@HOST:5000/")
    assert server_id(None) == ""


# --------------------------------------------------------------------------------------
# local folders: no MLflow, no cache


class _BlockMlflow(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "mlflow" or name.startswith("mlflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


@pytest.fixture
def no_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow is not installed, as far as this test can tell."""
    for name in list(sys.modules):
        if name == "mlflow" or name.startswith("mlflow."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_BlockMlflow(), *sys.meta_path])


def test_local_and_file_need_no_mlflow(no_mlflow: None, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    local = materialize(str(EXAMPLE), cache_dir=cache)
    assert local.path == EXAMPLE and local.kind == "local" and not local.cached
    assert local.uri == str(EXAMPLE)
    as_file = materialize(EXAMPLE.as_uri(), cache_dir=cache)
    assert as_file.path == EXAMPLE and as_file.kind == "file"
    assert not cache.exists()
    assert "mlflow" not in sys.modules


def test_local_materialize_does_not_import_mlflow() -> None:
    code = (
        "import sys; from envbuild.sources import materialize; "
        f"s = materialize({str(EXAMPLE)!r}); "
        "assert 'mlflow' not in sys.modules, 'mlflow imported'; print(s.kind)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "local"


def test_missing_mlflow_names_the_extra(no_mlflow: None, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as err:
        materialize(
            f"runs:/{RUN}/model", tracking_uri="http://127.0.0.1:9", cache_dir=tmp_path / "c"
        )
    assert err.value.code == "EB601"
    assert err.value.exit_code == 2
    assert "pip install 'envbuild[mlflow]'" in err.value.hint
    assert f"runs:/{RUN}/model" in str(err.value)
    assert not (tmp_path / "c").exists()


def test_registered_model_meta_is_read_from_a_local_folder(copy_model: Any) -> None:
    folder = copy_model("sklearn-credit")
    (folder / "registered_model_meta").write_text("model_name: credit\nmodel_version: '4'\n")
    source = materialize(str(folder))
    assert (source.registered_name, source.version) == ("credit", "4")
    assert source.provenance()["registered_name"] == "credit"
    assert source.labels() == {
        "io.envbuild.source.registered-name": "credit",
        "io.envbuild.source.version": "4",
    }
    assert materialize(str(EXAMPLE)).labels() == {}


@pytest.mark.parametrize("content", ["[not, a, mapping]", ":\n  - {", "model_name: [1]\n"])
def test_malformed_registered_model_meta_is_ignored(copy_model: Any, content: str) -> None:
    folder = copy_model("sklearn-credit")
    (folder / "registered_model_meta").write_text(content)
    source = materialize(str(folder))
    assert source.registered_name is None and source.version is None


def test_no_tracking_uri(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for uri in (f"runs:/{RUN}/model", "models:/credit/1", "models:/credit@champion"):
        with pytest.raises(SourceError) as err:
            materialize(uri, cache_dir=tmp_path / "c")
        assert err.value.code == "EB602"
        assert "--tracking-uri" in err.value.hint
    assert not (tmp_path / "c").exists()


# --------------------------------------------------------------------------------------
# cache location


def test_cache_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ENVBUILD_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "envbuild" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "envbuild" / "models"
    monkeypatch.setenv("ENVBUILD_CACHE_DIR", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"


# --------------------------------------------------------------------------------------
# the cache, with a fake MLflow (error paths only)


class FakeMlflow:
    """Stands in for envbuild._mlflow.Mlflow: copies the example as the 'download', or
    fails half-way through it."""

    downloads = 0
    fail: BaseException | None = None

    def __init__(self, *, shown: str, tracking_uri: str | None, registry_uri: str | None):
        self.shown = shown
        self.tracking_uri = tracking_uri

    def probe(self) -> None:
        pass

    def run(self, run_id: str) -> str:
        return f"mlflow-artifacts:/0/{run_id}/artifacts"

    def model_version(self, name: str, version: str) -> _mlflow.ModelVersion:
        return _mlflow.ModelVersion(
            name=name, version=version, run_id=RUN, source=None, model_id=None
        )

    def model_version_by_alias(self, name: str, alias: str) -> _mlflow.ModelVersion:
        return self.model_version(name, "7")

    def download(self, artifact_uri: str, dst: Path) -> Path:
        type(self).downloads += 1
        target = dst / "model"
        dst.mkdir(parents=True)
        shutil.copytree(EXAMPLE, target)
        fail = type(self).fail
        if fail is not None:
            raise fail
        return target


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeMlflow]:
    FakeMlflow.downloads = 0
    FakeMlflow.fail = None
    monkeypatch.setattr(_mlflow, "Mlflow", FakeMlflow)
    return FakeMlflow


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*")) if root.exists() else []


def test_second_call_hits_the_cache(fake: type[FakeMlflow], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = materialize(f"runs:/{RUN}/model", tracking_uri="http://h:5000", cache_dir=cache)
    assert fake.downloads == 1 and not first.cached
    assert (first.path / "MLmodel").is_file()
    assert first.path.is_relative_to(cache / "runs")
    assert first.run_id == RUN and first.artifact_path == "model"
    second = materialize(f"runs:/{RUN}/model", tracking_uri="http://h:5000", cache_dir=cache)
    assert fake.downloads == 1 and second.cached
    assert second.path == first.path
    assert second.provenance() == first.provenance()
    # another server is another cache entry
    materialize(f"runs:/{RUN}/model", tracking_uri="http://other:5000", cache_dir=cache)
    assert fake.downloads == 2
    assert not list(cache.glob(".tmp-*"))


def test_alias_is_cached_under_its_version(fake: type[FakeMlflow], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    by_alias = materialize("models:/credit@champion", tracking_uri="http://h", cache_dir=cache)
    assert (by_alias.registered_name, by_alias.version, by_alias.alias) == (
        "credit",
        "7",
        "champion",
    )
    by_version = materialize("models:/credit/7", tracking_uri="http://h", cache_dir=cache)
    assert fake.downloads == 1 and by_version.cached and by_version.alias is None
    assert by_version.path == by_alias.path


@pytest.mark.parametrize(
    "failure",
    [
        KeyboardInterrupt(),
        SourceError("boom", code="EB607"),
        OSError(28, "No space left on device"),
    ],
    ids=["interrupted", "mlflow-error", "disk-full"],
)
def test_failed_download_leaves_nothing(
    fake: type[FakeMlflow], tmp_path: Path, failure: BaseException
) -> None:
    cache = tmp_path / "cache"
    fake.fail = failure
    with pytest.raises(type(failure) if not isinstance(failure, OSError) else SourceError):
        materialize("models:/credit/3", tracking_uri="http://h", cache_dir=cache)
    assert fake.downloads == 1
    assert _files(cache) == []
    fake.fail = None
    ok = materialize("models:/credit/3", tracking_uri="http://h", cache_dir=cache)
    assert fake.downloads == 2 and not ok.cached and (ok.path / "MLmodel").is_file()


def test_download_that_is_not_a_model_is_not_cached(
    fake: type[FakeMlflow], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def download(self: FakeMlflow, artifact_uri: str, dst: Path) -> Path:
        (dst / "model").mkdir(parents=True)
        (dst / "model" / "notes.txt").write_text("hello")
        return dst

    monkeypatch.setattr(FakeMlflow, "download", download)
    with pytest.raises(SourceError) as err:
        materialize(f"runs:/{RUN}", tracking_uri="http://h", cache_dir=tmp_path / "c")
    assert err.value.code == "EB607"
    assert _files(tmp_path / "c") == []


def test_stale_temporary_folders_are_swept(fake: type[FakeMlflow], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stale = cache / f".tmp-{dead}-abc"
    (stale / "files").mkdir(parents=True)
    (stale / "files" / "half").write_text("x")
    alive = cache / f".tmp-{os.getppid()}-abc"
    alive.mkdir()
    materialize("models:/credit/1", tracking_uri="http://h", cache_dir=cache)
    assert not stale.exists()
    assert alive.exists()


def test_cache_dir_that_cannot_be_created(fake: type[FakeMlflow], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SourceError) as err:
        materialize("models:/credit/1", tracking_uri="http://h", cache_dir=blocker / "c")
    assert err.value.code == "EB608"
    assert "--cache-dir" in err.value.hint


def test_credentials_never_reach_provenance_or_cache(
    fake: type[FakeMlflow], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    source = materialize(
        "models:/credit/2", tracking_uri="https://bob:hunter2@mlflow.example", cache_dir=cache
    )
    blob = json.dumps(source.provenance()) + json.dumps(source.labels()) + source.describe()
    assert "hunter2" not in blob and "bob" not in blob
    assert source.tracking_uri == "https://****@mlflow.example"
    for path in _files(cache):
        if path.is_file():
            assert b"hunter2" not in path.read_bytes()
        assert "hunter2" not in str(path)


def test_labels_are_single_line_and_prefixed(fake: type[FakeMlflow], tmp_path: Path) -> None:
    source = materialize("models:/credit@champion", tracking_uri="http://h", cache_dir=tmp_path)
    labels = source.labels()
    assert labels == {
        "io.envbuild.source.alias": "champion",
        "io.envbuild.source.kind": "models",
        "io.envbuild.source.registered-name": "credit",
        "io.envbuild.source.run-id": RUN,
        "io.envbuild.source.tracking-uri": "http://h",
        "io.envbuild.source.uri": "models:/credit@champion",
        "io.envbuild.source.version": "7",
    }


# --------------------------------------------------------------------------------------
# the CLI side


def test_show_json_carries_the_source() -> None:
    result = CliRunner().invoke(main, ["show", str(EXAMPLE), "--format", "json"])
    doc = json.loads(result.stdout)
    assert doc["result"]["source"] == {
        "uri": str(EXAMPLE),
        "kind": "local",
        "run_id": None,
        "registered_name": None,
        "version": None,
        "alias": None,
        "stage": None,
        "model_id": None,
        "artifact_path": None,
        "tracking_uri": None,
    }


def test_show_uri_error_is_one_line_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["show", "models:/a/b/c", "--cache-dir", str(tmp_path), "--format", "json"]
    )
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["error"]["code"] == "EB600"
    lines = result.stderr.splitlines()
    assert lines[0].startswith("ERROR EB600 models:/a/b/c: ") and lines[1].startswith("  TIP ")
    assert len(lines) == 2


def test_codes_are_in_range() -> None:
    assert all(code.startswith("EB6") and len(code) == 5 for code in CODES)


def test_show_file_uri_same_as_path() -> None:
    def run(location: str) -> dict[str, Any]:
        result = CliRunner().invoke(main, ["show", location, "--format", "json"])
        assert result.exit_code == 0, result.output
        doc: dict[str, Any] = json.loads(result.stdout)
        return doc

    by_path, by_uri = run(str(EXAMPLE)), run(EXAMPLE.as_uri())
    assert by_uri["result"].pop("source")["kind"] == "file"
    by_path["result"].pop("source")
    assert by_uri == by_path


@pytest.mark.parametrize(
    "args",
    [
        ["lock", "models:/credit/1"],
        ["infer", "models:/credit/1"],
    ],
    ids=["lock", "infer"],
)
def test_commands_refuse_to_write_into_a_download(
    fake: type[FakeMlflow], tmp_path: Path, args: list[str]
) -> None:
    cache = tmp_path / "cache"
    result = CliRunner().invoke(
        main, [*args, "--tracking-uri", "http://h", "--cache-dir", str(cache)]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[-2].startswith("ERROR EB612 models:/credit/1: ")
    assert lines[-1].startswith("  TIP ")
    (entry,) = (cache / "models").iterdir()
    before = sorted(p.relative_to(entry).as_posix() for p in entry.rglob("*"))
    assert "files/credit/model/MLmodel" in before
    assert not any(n.endswith(("requirements.lock", ".bak")) for n in before)

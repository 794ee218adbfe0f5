"""The image's bill of materials (render/sbom.py): a CycloneDX 1.6 document that the
schema accepts, naming every pin of the lock with its version, hashes and index, the model
and the base image; byte-identical between identical renders; no credentials."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from envbuild._adapters.uv import uv_bin
from envbuild.build import context_tar
from envbuild.read import read_model
from envbuild.render import render
from envbuild.render.sbom import SBOM_FILE, SBOM_LABEL, SBOM_PATH, indexes, sbom_json
from envbuild.resolve.lock import Lock
from tests.helpers import EXAMPLES, ROOT
from tests.unit.test_render import FAKE_UV, UV_REQ, lock_view

CORPUS = ROOT / "tests" / "corpus" / "models"


def valid(text: str) -> dict[str, Any]:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, str(error)
    doc: dict[str, Any] = json.loads(text)
    return doc


def with_options(lock: Lock, *lines: str) -> Lock:
    """``lock`` with index option lines added (read back by the one lock reader)."""
    text = lock.text.replace("\n", "\n" + "".join(f"{line}\n" for line in lines), 1)
    return replace(lock_view("x", text=text), target=lock.target)


def components(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in doc["components"]}


@pytest.mark.parametrize("name", ["sklearn-credit", "pyfunc-custom", "pytorch-tensor"])
def test_every_pin_with_hashes_and_index_and_the_base_image(name: str) -> None:
    folder = read_model(EXAMPLES / name)
    lock = lock_view(name)
    doc = valid(sbom_json(folder, lock, base_image="python:3.11-slim"))
    by_ref = components(doc)
    assert len(lock.pins) > 5
    for pin in lock.pins:
        c = by_ref[f"pkg:pypi/{pin.name}@{pin.version}"]
        assert (c["name"], c["version"], c["purl"]) == (
            pin.name,
            str(pin.version),
            f"pkg:pypi/{pin.name}@{pin.version}",
        )
        assert sorted(f"sha256:{h['content']}" for h in c["hashes"]) == sorted(pin.hashes)
        assert all(h["alg"] == "SHA-256" for h in c["hashes"])
        assert c["externalReferences"][0]["url"] == f"https://pypi.org/simple/{pin.name}/"
        assert sorted(p["value"] for p in c.get("properties", [])) == sorted(pin.requested_by)
    base = by_ref["envbuild:base-image"]
    assert (base["type"], base["name"], base["version"]) == ("container", "python", "3.11-slim")
    assert base["purl"] == "pkg:docker/python@3.11-slim"
    model = by_ref["envbuild:model"]
    assert model["type"] == "machine-learning-model" and model["name"] == name
    assert doc["metadata"]["component"]["bom-ref"] == "envbuild:image"
    props = {p["name"]: p["value"] for p in doc["metadata"]["properties"]}
    assert props["envbuild:lock.sha256"] == lock.sha256
    assert "timestamp" not in doc["metadata"]
    # the graph: what the lock's "# via" lines say, and the image depends on the rest
    deps = {d["ref"]: set(d.get("dependsOn", ())) for d in doc["dependencies"]}
    for pin in lock.pins:
        ref = f"pkg:pypi/{pin.name}@{pin.version}"
        for parent in pin.requested_by:
            p = lock.pin(parent) if "." not in parent and " " not in parent else None
            if p is not None:
                assert ref in deps[f"pkg:pypi/{p.name}@{p.version}"], (parent, ref)
    assert {"envbuild:base-image", "envbuild:model"} <= deps["envbuild:image"]


def test_a_corpus_model_written_by_real_mlflow() -> None:
    folder = read_model(CORPUS / "mlflow1.30.1-py3.8-sklearn-pickle")
    doc = valid(sbom_json(folder, lock_view("sklearn-credit"), base_image="python:3.8-slim"))
    model = components(doc)["envbuild:model"]
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["mlflow:mlflow-version"] == "1.30.1"
    assert "sklearn" in props["mlflow:flavors"]


def test_deterministic_and_the_serial_follows_the_inputs() -> None:
    folder = read_model(EXAMPLES / "pyfunc-custom")
    lock = lock_view("pyfunc-custom")
    first = sbom_json(folder, lock, base_image="python:3.11-slim")
    assert first == sbom_json(folder, lock, base_image="python:3.11-slim")
    other = sbom_json(folder, lock, base_image="python:3.12-slim")
    serial = json.loads(first)["serialNumber"]
    assert serial.startswith("urn:uuid:") and serial != json.loads(other)["serialNumber"]
    changed = lock_view("pyfunc-custom-psutil")
    assert json.loads(sbom_json(folder, changed, base_image="python:3.11-slim"))[
        "serialNumber"
    ] not in (serial, json.loads(other)["serialNumber"])


def test_credentials_never_reach_the_document() -> None:
    folder = read_model(EXAMPLES / "pyfunc-custom")
    lock = with_options(
        lock_view("pyfunc-custom"),
        "--index-url https://alice:s3cr3t@private.example/simple",
        "--extra-index-url https://tok3n@mirror.example/simple",
        "--extra-index-url https://signed.example/simple?sig=qu3ry",
    )
    text = sbom_json(folder, lock, base_image="python:3.11-slim")
    doc = valid(text)
    for secret in ("s3cr3t", "tok3n", "alice", "qu3ry"):
        assert secret not in text
    assert indexes(lock) == (
        "https://****@private.example/simple",
        "https://****@mirror.example/simple",
        "https://signed.example/simple?sig=****",
    )
    # two indexes: which one served a pin is not in the lock, so both are named as candidates
    pin = lock.pins[0]
    c = components(doc)[f"pkg:pypi/{pin.name}@{pin.version}"]
    assert "externalReferences" not in c and "repository_url" not in c["purl"]
    candidates = [p["value"] for p in c["properties"] if p["name"] == "envbuild:index-candidate"]
    assert sorted(candidates) == sorted(indexes(lock))


def test_one_private_index_is_the_source_of_every_pin() -> None:
    folder = read_model(EXAMPLES / "pyfunc-custom")
    lock = with_options(lock_view("pyfunc-custom"), "--index-url https://pypi.corp.example/simple")
    doc = valid(
        sbom_json(folder, lock, base_image="registry.example:5000/team/py:3.11@sha256:" + "a" * 64)
    )
    base = components(doc)["envbuild:base-image"]
    assert (base["name"], base["version"]) == (
        "registry.example:5000/team/py",
        "sha256:" + "a" * 64,
    )
    by_name = {c["name"]: c for c in doc["components"]}
    for pin in lock.pins:
        c = by_name[pin.name]
        assert "repository_url=https://pypi.corp.example/simple" in c["purl"]
        assert c["externalReferences"][0]["url"] == f"https://pypi.corp.example/simple/{pin.name}/"


def test_render_puts_it_in_the_context_the_image_and_a_label() -> None:
    folder = read_model(EXAMPLES / "sklearn-credit")
    lock = lock_view("sklearn-credit")

    uv = Path(uv_bin())  # a real file: the context tar reads it

    def plan() -> Any:
        return render(folder, lock, command="envbuild image x", uv_binary=uv, uv_requirement=UV_REQ)

    first = plan()
    files = {f.path: f.read() for f in first.files}
    assert files[SBOM_FILE].decode() == sbom_json(folder, lock, base_image=first.base_image)
    assert f"COPY {SBOM_FILE} {SBOM_PATH}\n" in first.dockerfile
    assert dict(first.labels)[SBOM_LABEL] == SBOM_PATH
    assert f'{SBOM_LABEL}="{SBOM_PATH}"' in first.dockerfile
    assert SBOM_FILE in first.to_json()["files"]
    # identical renders give an identical context: the build stays cached
    assert context_tar(first) == context_tar(plan())


def test_written_beside_the_dockerfile_by_output(tmp_path: Path) -> None:
    from envbuild.build import write_context

    folder = read_model(EXAMPLES / "pyfunc-custom")
    lock = lock_view("pyfunc-custom")
    p = render(folder, lock, command="envbuild image x", uv_binary=FAKE_UV, uv_requirement=UV_REQ)
    write_context(p, tmp_path / "out")
    valid((tmp_path / "out" / SBOM_FILE).read_text())
    assert (tmp_path / "out" / "Dockerfile").is_file()


def test_a_pin_the_lock_says_came_from_one_index_names_that_index() -> None:
    """A lock written by envbuild says per pin where uv took it from (``# from``): with two
    indexes, the SBOM then names that one index, not both as candidates."""
    folder = read_model(EXAMPLES / "pyfunc-custom")
    base = lock_view("pyfunc-custom")
    first, *rest = base.pins
    text = base.text.replace(
        f"{first.name}=={first.version}",
        f"--extra-index-url https://pypi.corp.example/simple\n{first.name}=={first.version}",
        1,
    )
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith(f"{first.name}=="))
    while at + 1 < len(lines) and lines[at + 1].startswith("    "):
        at += 1
    lines.insert(at + 1, "    # from https://pypi.corp.example/simple\n")
    lock = replace(lock_view("x", text="".join(lines)), target=base.target)
    assert lock.pin(first.name).index == "https://pypi.corp.example/simple"  # type: ignore[union-attr]
    doc = valid(sbom_json(folder, lock, base_image="python:3.11-slim"))
    c = {c["name"]: c for c in doc["components"]}
    ours = c[first.name]
    assert "repository_url=https://pypi.corp.example/simple" in ours["purl"]
    assert not [p for p in ours["properties"] if p["name"] == "envbuild:index-candidate"]
    if rest:  # the others have no "# from" line: both indexes stay candidates
        other = c[rest[0].name]
        candidates = [
            p["value"] for p in other["properties"] if p["name"] == "envbuild:index-candidate"
        ]
        assert sorted(candidates) == sorted(indexes(lock))

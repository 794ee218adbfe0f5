"""The SBOM: a CycloneDX 1.5 document of the lock (every package, version, hashes, purl;
the indexes; the base image), valid against CycloneDX's own schema, in the context beside
the lock and named by a label."""

from __future__ import annotations

import json

from envbuild.read import read_model
from envbuild.render import render
from envbuild.render.sbom import SBOM_PATH
from tests.helpers import EXAMPLES
from tests.unit.test_render import FAKE_UV, GOLDEN, UV_REQ, lock_view


def test_the_sbom_lists_the_lock_and_is_valid_cyclonedx() -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    secret = "https://deploy:s3cr3t@pkgs.example.com/simple"
    text = f"--extra-index-url {secret}\n" + (GOLDEN / "locks" / "pyfunc-custom.lock").read_text()
    lock = lock_view("pyfunc-custom", text=text)
    plan = render(
        read_model(EXAMPLES / "pyfunc-custom"),
        lock,
        command="envbuild image examples/pyfunc-custom",
        buildkit=True,
        uv_binary=FAKE_UV,
        uv_requirement=UV_REQ,
    )
    data = next(f for f in plan.files if f.path == ".envbuild/sbom.cdx.json").read()
    assert b"s3cr3t" not in data
    errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(data.decode())
    assert errors is None, errors
    doc = json.loads(data)
    libraries = {c["name"]: c for c in doc["components"] if c["type"] == "library"}
    assert sorted(libraries) == sorted(p.name for p in lock.pins)
    for pin in lock.pins:
        c = libraries[pin.name]
        assert (
            c["version"] == str(pin.version) and c["purl"] == f"pkg:pypi/{pin.name}@{pin.version}"
        )
        assert sorted(f"sha256:{h['content']}" for h in c["hashes"]) == sorted(pin.hashes)
    [base] = [c for c in doc["components"] if c["type"] == "container"]
    assert base["name"] == plan.base_image == "python:3.11-slim"
    props = {(p["name"], p["value"]) for p in doc["metadata"]["properties"]}
    assert ("envbuild:index", "https://pkgs.example.com/simple") in props
    assert ("envbuild:lock.sha256", lock.sha256) in props
    assert dict(plan.labels)["io.envbuild.sbom"] == SBOM_PATH
    assert ".envbuild/sbom.cdx.json" in plan.dockerfile
    # the same lock gives the same bytes
    again = render(
        read_model(EXAMPLES / "pyfunc-custom"), lock, command="envbuild image examples/pyfunc-custom",
        buildkit=True, uv_binary=FAKE_UV, uv_requirement=UV_REQ,
    )  # fmt: skip
    assert next(f for f in again.files if f.path == ".envbuild/sbom.cdx.json").read() == data

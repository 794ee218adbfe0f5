"""The image's software bill of materials: a CycloneDX 1.5 JSON document of the locked
environment (every package with its version, hashes and purl, the indexes the lock names,
the base image), written beside the lock into the image (/opt/envbuild/sbom.cdx.json) and
into an --output context. Built from the lock alone, with no timestamp, so the same lock
and base give the same bytes (and the layer it rides in stays cached)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from envbuild import __version__
from envbuild.credentials import plain
from envbuild.resolve.lock import Pin

SBOM_PATH = "/opt/envbuild/sbom.cdx.json"
_ALGORITHMS = {"sha256": "SHA-256", "sha384": "SHA-384", "sha512": "SHA-512"}


def _purl(pin: Pin) -> str:
    return f"pkg:pypi/{pin.name}@{pin.version}"


def _image_purl(image: str) -> str:
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    return f"pkg:docker/{name}@{tag}" if tag else f"pkg:docker/{image}"


def sbom(
    *,
    model: str,
    pins: Sequence[Pin],
    base_image: str,
    python: str,
    platform: str,
    lock_sha256: str,
    indexes: Sequence[str],
) -> str:
    """The CycloneDX JSON text (sorted keys, a trailing newline)."""
    components: list[dict[str, Any]] = [
        {
            "type": "container",
            "bom-ref": "base-image",
            "name": base_image,
            "purl": _image_purl(base_image),
            "description": "the base image the environment is installed on",
        }
    ]
    for pin in pins:
        hashes = []
        for h in pin.hashes:
            alg, _, digest = h.partition(":")
            if alg in _ALGORITHMS and digest:
                hashes.append({"alg": _ALGORITHMS[alg], "content": digest})
        component: dict[str, Any] = {
            "type": "library",
            "bom-ref": _purl(pin),
            "name": pin.name,
            "version": str(pin.version),
            "purl": _purl(pin),
        }
        if hashes:
            component["hashes"] = hashes
        components.append(component)
    properties = [
        {"name": "envbuild:lock.sha256", "value": lock_sha256},
        {"name": "envbuild:python", "value": python},
        {"name": "envbuild:platform", "value": platform},
    ]
    properties += [{"name": "envbuild:index", "value": plain(i)} for i in indexes]
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'envbuild:' + lock_sha256 + base_image)}",
        "metadata": {
            "tools": {
                "components": [{"type": "application", "name": "envbuild", "version": __version__}]
            },
            "component": {
                "type": "application",
                "bom-ref": "model",
                "name": model,
                "description": "MLflow model served by envbuild",
            },
            "properties": properties,
        },
        "components": components,
        "dependencies": [{"ref": "model", "dependsOn": ["base-image", *(_purl(p) for p in pins)]}],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"

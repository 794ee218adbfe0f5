"""The image's software bill of materials: a CycloneDX JSON document of the locked
environment (every pin with its version, hashes, the index it comes from and what asked
for it), the model, and the base image. It is part of the build context (``sbom.cdx.json``
beside the Dockerfile), copied to ``SBOM_PATH`` in the image and named by a label.

The bytes depend only on the lock, the base image, the model and envbuild's version: no
timestamp, and a serial number derived from those inputs, so identical builds give an
identical context and stay cached. Index URLs pass through the one credential masker."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from packageurl import PackageURL
from packaging.utils import canonicalize_name

from envbuild import __version__
from envbuild.read import ModelFolder
from envbuild.resolve.lock import Lock, Pin, source_label

if TYPE_CHECKING:  # imported where used: the CLI starts without loading cyclonedx
    from cyclonedx.model.component import Component

SBOM_PATH = "/opt/envbuild/sbom.cdx.json"  # in the image
SBOM_FILE = "sbom.cdx.json"  # in the build context (and so beside --output)
SBOM_LABEL = "io.envbuild.sbom"
PYPI = "https://pypi.org/simple"

_IMAGE_REF = "envbuild:image"
_BASE_REF = "envbuild:base-image"
_MODEL_REF = "envbuild:model"


def indexes(lock: Lock) -> tuple[str, ...]:
    """The indexes the lock was resolved against, masked (user info and query values),
    default index first (PyPI unless the lock names another or --no-index), then the extra
    indexes and find-links URLs (a local directory by its name only)."""
    default: str | None = PYPI
    extra: list[str] = []
    for opt in lock.options:
        if opt.option in ("-i", "--index-url") and opt.value:
            default = source_label(opt.value)
        elif opt.option == "--no-index":
            default = None
        elif opt.option in ("--extra-index-url", "-f", "--find-links") and opt.value:
            extra.append(source_label(opt.value))
    return tuple(dict.fromkeys([*([default] if default else []), *extra]))


def _image_component(base_image: str) -> tuple[str, str, PackageURL | None]:
    """name, version and purl of an image reference such as ``python:3.11-slim`` or
    ``registry:5000/ns/name:tag@sha256:...``."""
    ref, _, digest = base_image.partition("@")
    repo, tag = ref, ""
    slash = ref.rfind("/")
    if ":" in ref[slash + 1 :]:
        repo, tag = ref.rsplit(":", 1)
    version = digest or tag or "latest"
    namespace, _, name = repo.rpartition("/")
    purl = PackageURL(type="docker", namespace=namespace or None, name=name, version=version)
    return repo, version, purl


def _pin_component(pin: Pin, sources: Sequence[str]) -> Component:
    from cyclonedx.contrib.hash.factories import HashTypeFactory
    from cyclonedx.model import ExternalReference, ExternalReferenceType, Property, XsUri
    from cyclonedx.model.component import Component, ComponentType

    only = pin.index or (sources[0] if len(sources) == 1 else None)
    qualifiers = {"repository_url": only} if only and only != PYPI and "://" in only else None
    purl = PackageURL(type="pypi", name=pin.name, version=str(pin.version), qualifiers=qualifiers)
    refs = []
    if only and "://" in only:
        refs.append(
            ExternalReference(
                type=ExternalReferenceType.DISTRIBUTION,
                url=XsUri(f"{only.rstrip('/')}/{pin.name}/"),
                comment="the package index the lock resolved it from",
            )
        )
    props = [Property(name="envbuild:requested-by", value=v) for v in pin.requested_by]
    if only is None:  # several indexes: uv took it from one of them
        props.extend(Property(name="envbuild:index-candidate", value=s) for s in sources)
    return Component(
        type=ComponentType.LIBRARY,
        name=pin.name,
        version=str(pin.version),
        bom_ref=purl.to_string(),
        purl=purl,
        hashes=[HashTypeFactory().from_composite_str(h) for h in pin.hashes],
        external_references=refs,
        properties=props,
    )


def _serial(lock: Lock, base_image: str, model: str) -> uuid.UUID:
    """A serial number that changes exactly when the document's inputs do."""
    digest = hashlib.sha256(f"{lock.sha256}\0{base_image}\0{model}\0{__version__}".encode())
    return uuid.UUID(bytes=digest.digest()[:16], version=5)


def sbom_json(folder: ModelFolder, lock: Lock, *, base_image: str) -> str:
    """The CycloneDX 1.6 JSON document, keys sorted, two-space indented."""
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.tool import ToolRepository
    from cyclonedx.output.json import JsonV1Dot6

    model_name = folder.path.resolve().name
    sources = indexes(lock)
    pins = {p.name: _pin_component(p, sources) for p in lock.pins}
    repo, version, purl = _image_component(base_image)
    base = Component(
        type=ComponentType.CONTAINER,
        name=repo,
        version=version,
        bom_ref=_BASE_REF,
        purl=purl,
        description=f"the base image {base_image}",
    )
    m = folder.mlmodel
    model = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=model_name,
        version=m.run_id or m.model_uuid or None,
        bom_ref=_MODEL_REF,
        description="the MLflow model the image serves",
        properties=[
            Property(name=f"mlflow:{key}", value=value)
            for key, value in (
                ("run-id", m.run_id),
                ("model-uuid", m.model_uuid),
                ("mlflow-version", m.mlflow_version),
                ("flavors", ",".join(sorted(f.name for f in m.flavors))),
            )
            if value
        ],
    )
    image = Component(
        type=ComponentType.CONTAINER,
        name=model_name,
        bom_ref=_IMAGE_REF,
        description=f"MLflow model {model_name} served by envbuild",
    )
    tool = Component(type=ComponentType.APPLICATION, name="envbuild", version=__version__)
    bom = Bom(
        serial_number=_serial(lock, base_image, model_name),
        metadata=BomMetaData(
            component=image,
            tools=ToolRepository(components=[tool]),
            properties=[
                Property(name="envbuild:lock.sha256", value=lock.sha256),
                Property(name="envbuild:python", value=lock.python_version),
                Property(name="envbuild:platform", value=lock.platform),
                *(Property(name="envbuild:index", value=s) for s in sources),
            ],
        ),
        components=[base, model, *pins.values()],
    )
    bom.metadata.timestamp = None  # type: ignore[assignment]  # the document must not change between identical builds
    for ref in (_BASE_REF, _MODEL_REF):
        bom.register_dependency(image, [c for c in bom.components if str(c.bom_ref) == ref])
    roots = []
    for pin in lock.pins:
        parents = {canonicalize_name(v.split("[", 1)[0]) for v in pin.requested_by}
        named = sorted(p for p in parents if p in pins and p != pin.name)
        for parent in named:
            bom.register_dependency(pins[parent], [pins[pin.name]])
        if not named or len(named) < len(parents):  # asked for by a file or envbuild itself
            roots.append(pins[pin.name])
    bom.register_dependency(image, roots)
    for component in pins.values():
        bom.register_dependency(component, [])
    text = JsonV1Dot6(bom).output_as_string()
    return json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

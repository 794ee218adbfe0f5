"""Module and file-format names -> the distributions that provide them: the tables inference
and the static dependency check (check runs without the training environment) share.

MLflow is one family, declared once here: ``mlflow`` and ``mlflow-skinny`` ship the same
``mlflow`` package (either satisfies an import of it); ``mlflow-tracing``, which MLflow 3
requires, provides no ``mlflow.pyfunc`` but belongs to the serving runtime."""

from __future__ import annotations

from packaging.utils import canonicalize_name

# The distributions that provide the ``mlflow`` package, the full one first: infer writes it
# when it is installed (what MLflow itself writes), and --check treats the two as one.
# Declared in envbuild/serving.py, whose serving stack chooses between them.
from envbuild.serving import MLFLOW as MLFLOW
from envbuild.serving import MLFLOW_DISTS as MLFLOW_DISTS
from envbuild.serving import MLFLOW_SKINNY as MLFLOW_SKINNY

# MLflow's own distributions (the two above and mlflow-tracing): their requirement closure
# is the serving runtime (render's serving_runtime_only).
MLFLOW_FAMILY = frozenset({*MLFLOW_DISTS, "mlflow-tracing"})

# What mlflow.pyfunc imports at load time whatever the flavor (not declared by
# mlflow-skinny): the same pair envbuild/serving.py adds.
PYFUNC_RUNTIME = ("pandas", "numpy")

# serialization formats MLmodel records -> the distribution that reads them
FORMAT_LIBRARIES = {"skops": "skops", "cloudpickle": "cloudpickle"}

# Import names whose distribution is named differently. Without the training environment
# (check runs in CI) this table, then the module name itself, maps a module to what must
# be installed for it; namespace packages map by their first two components.
IMPORT_NAMES = {
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "cv2": "opencv-python",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "attr": "attrs",
    "Crypto": "pycryptodome",
    "jwt": "pyjwt",
    "dotenv": "python-dotenv",
    "umap": "umap-learn",
    "sentence_transformers": "sentence-transformers",
    "category_encoders": "category-encoders",
    "sklearn_pandas": "sklearn-pandas",
    "google.protobuf": "protobuf",
    "fitz": "pymupdf",
    "docx": "python-docx",
    "magic": "python-magic",
    "serial": "pyserial",
    "usb": "pyusb",
    "lightning": "lightning",
    "pytorch_lightning": "pytorch-lightning",
    "tensorflow_hub": "tensorflow-hub",
    "mlflow": MLFLOW_SKINNY,
    "torchvision": "torchvision",
}
NAMESPACES = ("google", "azure", "jaraco", "zope", "backports")
# distributions that provide another's modules (an import of mlflow is satisfied by either)
PROVIDES = {
    MLFLOW: MLFLOW_SKINNY,
    "opencv-python-headless": "opencv-python",
    "tensorflow-cpu": "tensorflow",
    "johnsnowlabs-for-databricks": "johnsnowlabs",
}


def distribution_for(module: str) -> str:
    parts = module.split(".")
    for n in (2, 1):
        key = ".".join(parts[:n])
        if key in IMPORT_NAMES:
            return IMPORT_NAMES[key]
    if parts[0] in NAMESPACES and len(parts) > 1:
        return canonicalize_name(f"{parts[0]}-{parts[1]}")
    return canonicalize_name(parts[0])

"""The one table of MLflow's built-in flavors: per flavor, the MLflow module that saves it
(and is its pyfunc ``loader_module``), the distribution of its library, the key its
``save_model`` writes that library's version under in MLmodel, what else its pyfunc loader
imports, and the Debian packages those need in the image.

Checked against the installed MLflow's own flavor modules (tests/unit/test_flavors.py:
every module with a ``FLAVOR_NAME`` and a ``save_model`` has a row, the version key is the
one ``add_flavor`` receives, and the distributions of ``get_default_pip_requirements`` are
covered). Rows for flavors MLflow 3 removed were read from MLflow 2.17's modules.

Stdlib only: read/, infer/, resolve/ and render/ all use it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Python distributions whose wheels or runtime need something the slim base lacks:
# distribution -> Debian packages (the Dockerfile's apt-get line).
SYSTEM_PACKAGES: dict[str, tuple[str, ...]] = {
    "lightgbm": ("libgomp1",),
    "xgboost": ("libgomp1",),
    "catboost": ("libgomp1",),
    "opencv-python": ("libgl1", "libglib2.0-0"),
    # the JVM: Spark and H2O start one to load the model (pyspark 4 needs Java 17+, which
    # is Debian 12's default; Debian 13's is 21)
    "h2o": ("default-jre-headless",),
    # nss_wrapper: the JVM's Hadoop login needs a user name, which an arbitrary UID lacks
    "pyspark": ("default-jre-headless", "libnss-wrapper"),
}
# distribution -> environment its runtime needs in the image: Spark's local driver binds to
# loopback and does not look up the container's hostname, which a container without a
# network (the smoke test's) cannot resolve
RUNTIME_ENV: dict[str, tuple[tuple[str, str], ...]] = {
    "pyspark": (
        ("SPARK_LOCAL_HOSTNAME", "localhost"),
        ("SPARK_LOCAL_IP", "127.0.0.1"),
        # the JVM takes its home from passwd, not HOME (Ivy refuses "?/.ivy2")
        ("JAVA_TOOL_OPTIONS", "-Duser.home=/tmp"),
        ("ENVBUILD_NSS_WRAPPER", "1"),
    ),
}
# mlflow.pytorch's default pickle module: cloudpickle under MLflow's name
TORCH_PICKLE_MODULE = "mlflow.pytorch.pickle_module"


@dataclass(frozen=True, kw_only=True)
class Need:
    """A distribution a flavor's pyfunc loader imports, and why."""

    distribution: str
    why: str


@dataclass(frozen=True, kw_only=True)
class FlavorRow:
    name: str  # the key under MLmodel's `flavors`
    module: str  # the MLflow module that saves it; its pyfunc loader_module
    library: str | None  # the distribution of the flavor's own library
    version_field: str | None  # the MLmodel key save_model writes the version under
    # other distributions the pyfunc loader imports, whatever the model
    imports: tuple[str, ...] = ()
    # distributions the loader imports only for some models: `needs` decides from MLmodel
    # what it can; the scan finds the rest (pickled custom objects reference cloudpickle)
    conditional: tuple[str, ...] = ()
    # in MLflow's default requirements but not imported to load and predict: why
    not_loaded: Mapping[str, str] | None = None
    pyfunc: bool = True  # whether the flavor writes a python_function loader
    removed_in: str | None = None  # the MLflow release that dropped the flavor

    @property
    def distributions(self) -> tuple[str, ...]:
        """Every distribution the row may need (library, imports, conditional)."""
        first = (self.library,) if self.library else ()
        return (*first, *self.imports, *self.conditional)

    @property
    def system_packages(self) -> tuple[str, ...]:
        """Debian packages its always-needed distributions need."""
        out: set[str] = set()
        for dist in ((self.library,) if self.library else ()) + self.imports:
            out.update(SYSTEM_PACKAGES.get(dist, ()))
        return tuple(sorted(out))


def _row(name: str, library: str | None, version_field: str | None, **kw: Any) -> FlavorRow:
    module = kw.pop("module", f"mlflow.{name}")
    return FlavorRow(name=name, module=module, library=library, version_field=version_field, **kw)


_TORCHVISION = "MLflow adds it beside torch; only image pipelines import it"
_ACCELERATE = "MLflow adds it when installed; loading on one device does not import it"

FLAVORS: dict[str, FlavorRow] = {
    r.name: r
    for r in (
        _row(
            "python_function",
            None,
            "cloudpickle_version",  # cloudpickle's, when python_model is a pickle
            module="mlflow.pyfunc.model",
            # a python_model pickle (cloudpickle_version), torch's pickle_module_name
            conditional=("cloudpickle",),
        ),
        _row("sklearn", "scikit-learn", "sklearn_version", conditional=("cloudpickle", "skops")),
        _row("xgboost", "xgboost", "xgb_version", conditional=("scikit-learn",)),
        _row(
            "lightgbm",
            "lightgbm",
            "lgb_version",
            conditional=("scikit-learn", "cloudpickle", "skops"),
        ),
        _row("catboost", "catboost", "catboost_version"),
        _row("statsmodels", "statsmodels", "statsmodels_version"),
        _row(
            "prophet",
            "prophet",
            "prophet_version",
            not_loaded={
                "cmdstanpy": "a prophet requirement; MLflow bounds it for prophet<=1.2.0",
                "pandas": "the pyfunc runtime; MLflow bounds it for prophet<1.2.2",
            },
        ),
        _row("pytorch", "torch", "pytorch_version", conditional=("cloudpickle",)),
        # `keras_version` holds tensorflow's version (tf.__version__ since MLflow 2.10;
        # keras 2.x's, numbered as tensorflow's, before)
        _row("tensorflow", "tensorflow", "keras_version", conditional=("cloudpickle",)),
        # Keras 3 (MLflow >= 2.13); MLflow 1.x-2.12's keras flavor names its keras_module
        _row("keras", "keras", "keras_version", conditional=("tensorflow", "torch", "jax")),
        _row("onnx", "onnx", "onnx_version", imports=("onnxruntime",)),
        _row(
            "spark",
            "pyspark",
            "pyspark_version",
            conditional=("torch", "scikit-learn", "torcheval"),
            not_loaded={"pandas": "the pyfunc runtime; MLflow bounds it for pyspark<3.4"},
        ),
        _row(
            "transformers",
            "transformers",
            "transformers_version",
            conditional=("torch", "tensorflow", "flax", "peft"),
            not_loaded={"torchvision": _TORCHVISION, "accelerate": _ACCELERATE},
        ),
        _row(
            "sentence_transformers",
            "sentence-transformers",
            "sentence_transformers_version",
            imports=("transformers", "torch"),
        ),
        _row(
            "diffusers",
            "diffusers",
            "diffusers_version",
            imports=("transformers", "torch", "peft", "safetensors"),
            not_loaded={"accelerate": _ACCELERATE},
        ),
        _row(
            "langchain",
            "langchain",
            "langchain_version",
            imports=("pydantic", "cloudpickle"),
        ),
        _row("llama_index", "llama-index", "llama_index_version"),
        _row("openai", "openai", "openai_version", imports=("tiktoken", "tenacity")),
        # dspy's MLmodel records no version (MLflow 3.17)
        _row("dspy", "dspy", None),
        _row("h2o", "h2o", "h2o_version"),
        _row("spacy", "spacy", "spacy_version"),
        _row("paddle", "paddlepaddle", "paddle_version"),
        _row("pmdarima", "pmdarima", "pmdarima_version"),
        _row("shap", "shap", "shap_version"),
        # the johnsnowlabs flavor records pyspark's version, not its own
        _row(
            "johnsnowlabs",
            "johnsnowlabs",
            None,
            imports=("pyspark",),
        ),
        # removed in MLflow 3.0 (rows from MLflow 2.17's modules)
        _row(
            "fastai", "fastai", "fastai_version", conditional=("cloudpickle",), removed_in="3.0.0"
        ),
        _row("diviner", "diviner", "diviner_version", removed_in="3.0.0"),
        _row("gluon", "mxnet", "mxnet_version", removed_in="3.0.0"),
        _row(
            "promptflow",
            "promptflow",
            "version",
            conditional=("promptflow-tools",),
            removed_in="3.0.0",
        ),
        _row("mleap", "mleap", "mleap_version", pyfunc=False, removed_in="3.0.0"),
    )
}


def _keras_backend(params: Mapping[str, Any]) -> str | None:
    backend = params.get("keras_backend")
    return {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}.get(str(backend))


def _transformers_engine(params: Mapping[str, Any]) -> Need:
    """The deep-learning framework a transformers pipeline runs on, as MLflow's loader
    picks it: the recorded framework, else a TF/Flax model class, else torch (the only
    engine of transformers 5, and MLflow's fallback)."""
    framework = params.get("framework")
    model_type = str(params.get("pipeline_model_type") or "")
    if framework == "tf" or model_type.startswith("TF"):
        return Need(distribution="tensorflow", why=f"a TensorFlow model ({model_type})")
    if framework == "flax" or model_type.startswith("Flax"):
        return Need(distribution="flax", why=f"a Flax model ({model_type})")
    why = (
        f"a PyTorch model (torch_dtype {params['torch_dtype']})"
        if params.get("torch_dtype")
        else "a PyTorch model (transformers' default engine)"
    )
    return Need(distribution="torch", why=why)


def needs(name: str, params: Mapping[str, Any]) -> tuple[Need, ...]:
    """What the flavor ``name`` with MLmodel parameters ``params`` needs installed to load
    through pyfunc: its library, what its loader always imports, and what this model's
    parameters make it import (the sklearn API of xgboost and lightgbm needs scikit-learn;
    a Keras 3 backend; a transformers engine; a Spark Connect model's torch)."""
    row = FLAVORS.get(name)
    if row is None:
        return ()
    out: list[Need] = []
    if row.library:
        out.append(Need(distribution=row.library, why=f"flavor {name}"))
    out.extend(
        Need(distribution=d, why=f"flavor {name}: its loader {row.module} imports {d}")
        for d in row.imports
    )
    if name == "python_function" and params.get("pickle_module_name") == TORCH_PICKLE_MODULE:
        why = f"pickle_module_name {TORCH_PICKLE_MODULE} (cloudpickle)"
        out.append(Need(distribution="cloudpickle", why=why))
    model_class = str(params.get("model_class") or "")
    if name in ("xgboost", "lightgbm") and model_class.startswith(f"{name}.sklearn."):
        out.append(
            Need(
                distribution="scikit-learn",
                why=f"flavor {name}: model_class {model_class} ({name}'s sklearn API)",
            )
        )
    if name == "spark" and model_class.startswith("pyspark.ml.connect."):
        for dist in ("torch", "scikit-learn", "torcheval"):
            why = f"flavor spark: a Spark Connect model ({model_class})"
            out.append(Need(distribution=dist, why=why))
    if name == "keras":
        keras_module = str(params.get("keras_module") or "")
        backend = _keras_backend(params)
        if keras_module.startswith("tensorflow"):
            why = f"flavor keras: keras_module {keras_module}"
            out.append(Need(distribution="tensorflow", why=why))
        elif backend:
            out.append(Need(distribution=backend, why=f"flavor keras: keras_backend {backend}"))
    if name == "transformers":
        engine = _transformers_engine(params)
        out.append(Need(distribution=engine.distribution, why=f"flavor transformers: {engine.why}"))
        if params.get("peft_adaptor"):
            why = "flavor transformers: a PEFT adaptor (peft_adaptor)"
            out.append(Need(distribution="peft", why=why))
    return tuple(out)


def recorded_version(name: str, params: Mapping[str, Any]) -> tuple[str, str] | None:
    """(version field, the library version MLmodel records) for flavor ``name``, if any.
    A ``keras_version`` of 3.x in the tensorflow flavor is Keras 3's (tensorflow.keras on
    TF >= 2.16 under MLflow < 2.10), not tensorflow's."""
    row = FLAVORS.get(name)
    if row is None or row.version_field is None:
        return None
    value = params.get(row.version_field)
    if value is None or value == "":
        return None
    text = str(value)
    if name == "tensorflow" and not text.startswith(("1.", "2.")):
        return None
    if name == "keras" and str(params.get("keras_module") or "").startswith("tensorflow"):
        return None  # tensorflow.keras's version, not the keras distribution's
    return row.version_field, text

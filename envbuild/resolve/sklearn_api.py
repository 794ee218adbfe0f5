"""scikit-learn 1.6's estimator tags: xgboost's and lightgbm's scikit-learn API (their
``XGBClassifier``, ``LGBMRegressor``, ...) before the releases that adopted them fail on
scikit-learn >= 1.6 with ``AttributeError: 'super' object has no attribute
'__sklearn_tags__'`` (dmlc/xgboost#11093, fixed in 2.1.4; lightgbm-org/LightGBM#6651,
released in 4.6.0). Neither project's metadata bounds scikit-learn, so a model that pins
the old library and names scikit-learn without a version resolves the newest one and
never loads. Found on the corpus model mlflow2.9.2-py3.9-xgboost-sklearn-no-env-files
(xgboost 2.0.3 from the MLmodel's xgb_version, scikit-learn from its model_class):
check said ok, the venv took scikit-learn 1.6.1 and the load failed.

For such pins the resolution gets ``scikit-learn<1.6`` (EB326), unless the model's own
scikit-learn requirement pins a version or allows no release before 1.6.
"""

from __future__ import annotations

from collections.abc import Sequence

from envbuild.findings import Code, Severity, table
from envbuild.read import Requirement
from envbuild.resolve.numpy_abi import ConstraintPlan, bound, model_decides, pins_below

EB326 = Code(
    "EB326",
    Severity.INFO,
    "a pinned xgboost or lightgbm predates scikit-learn 1.6's estimator tags: the "
    "resolution keeps scikit-learn<1.6",
)
CODES: dict[str, str] = table(EB326)

# canonical name -> the first version whose scikit-learn API works with scikit-learn 1.6
TAGS_FROM: dict[str, str] = {"xgboost": "2.1.4", "lightgbm": "4.6.0"}

SKLEARN_TAGS = "1.6"  # the scikit-learn release that requires __sklearn_tags__
LAST_BEFORE = "1.5.2"  # a release before it: a range without it excludes them all


def sklearn_plan(reqs: Sequence[Requirement]) -> ConstraintPlan:
    """``scikit-learn<1.6`` when a requirement pins a library of TAGS_FROM below the
    version that supports scikit-learn 1.6, unless the model pins scikit-learn or asks
    for 1.6 and later only."""
    old = pins_below(reqs, TAGS_FROM)
    if model_decides(reqs, "scikit-learn", LAST_BEFORE) or not old:
        return ConstraintPlan()
    r, at, first = old[0]
    because = (
        f"{r.name}=={at}'s scikit-learn API predates scikit-learn {SKLEARN_TAGS}'s "
        f"estimator tags (supported from {r.name} {first})"
    )
    finding = EB326.at(
        r.location,
        f"{because}: its estimators fail to load under scikit-learn>={SKLEARN_TAGS}, so "
        f"the lock keeps scikit-learn<{SKLEARN_TAGS}",
        hint="pin the scikit-learn the model was trained with in the requirements, "
        f"or re-save the model with {r.name}>={first}",
    )
    return ConstraintPlan(
        constraints=(bound(f"scikit-learn<{SKLEARN_TAGS}", r, because),), findings=(finding,)
    )

"""Regenerate the pickle fixtures of tests/unit/test_scan_pickles.py.

Run with an interpreter that has numpy, scikit-learn, joblib, cloudpickle and torch (the
examples' venv):

    /work/venvs/examples-mlflow3/bin/python tests/data/pickles/make_pickles.py

Every file is written by the real library (pickle, joblib, cloudpickle, torch.save), except
the dangerous ones, whose __reduce__ names os.system / builtins.exec: they are written with
the standard pickler and never loaded. Their payload would create the file
``ENVBUILD_PWNED`` in the working directory; the tests prove it never appears.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import sys
from pathlib import Path

import cloudpickle
import joblib
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent
PAYLOAD = "touch ENVBUILD_PWNED"


def _estimator() -> LogisticRegression:
    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
    return LogisticRegression().fit(x, [0, 1, 0, 1])


class Thing:
    """Defined in __main__: a plain pickle of it references __main__.Thing."""

    def __init__(self) -> None:
        self.value = 3


def scaled(values: list[float]) -> object:
    # np and json are module globals: cloudpickle records them as subimport('numpy'),
    # subimport('json') when it pickles this function by value
    return json.dumps(np.asarray(values).tolist())


class ByValue:
    """A class defined in __main__, pickled by value by cloudpickle."""

    def score(self, x: float) -> float:
        return float(np.tanh(x))


class Dangerous:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (PAYLOAD,))


class DangerousExec:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"import os; os.system({PAYLOAD!r})",))


def main() -> None:
    HERE.mkdir(exist_ok=True)
    est = _estimator()
    data = np.arange(6, dtype=np.float64).reshape(2, 3)

    # plain pickle, protocols 0, 2 and 5
    (HERE / "plain_p0.pkl").write_bytes(pickle.dumps(collections.OrderedDict(a=data), protocol=0))
    (HERE / "sklearn_p2.pkl").write_bytes(pickle.dumps(est, protocol=2))
    (HERE / "sklearn_p5.pkl").write_bytes(pickle.dumps(est, protocol=5))

    # joblib: numeric arrays of several dtypes written raw between pickle opcodes, an object
    # array (a nested pickle), and a scikit-learn object AFTER all of them, so scanning must
    # step over every array to see it
    scaler = StandardScaler().fit(data)
    bundle = {
        "f64": np.linspace(0, 1, 7),
        "i32": np.arange(5, dtype=np.int32),
        "u8": np.arange(3, dtype=np.uint8),
        "strings": np.array(["ab", "cde"]),
        "objects": np.array([{"k": 1}, "x"], dtype=object),
        "scaler": scaler,
    }
    joblib.dump(bundle, HERE / "bundle.joblib")
    for codec in ("zlib", "gzip", "bz2", "xz", "lzma"):
        joblib.dump(bundle, HERE / f"bundle.{codec}.joblib", compress=(codec, 3))

    # cloudpickle: a function and a class from __main__, pickled by value
    (HERE / "cloudpickle_byvalue.pkl").write_bytes(
        cloudpickle.dumps({"fn": scaled, "cls": ByValue}, protocol=4)
    )

    # __main__ by reference: only this script could load it
    (HERE / "main_ref.pkl").write_bytes(pickle.dumps(Thing(), protocol=4))

    # dangerous: os.system (pickled as posix.system / nt.system) and builtins.exec
    (HERE / "dangerous_system.pkl").write_bytes(pickle.dumps(Dangerous(), protocol=2))
    (HERE / "dangerous_exec.pkl").write_bytes(pickle.dumps(DangerousExec(), protocol=4))

    # torch.save: zip with data.pkl, and the legacy format (several pickles then raw bytes)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    torch.save(model, HERE / "torch_zip.pt")
    torch.save(model.state_dict(), HERE / "torch_legacy.pt", _use_new_zipfile_serialization=False)

    sizes = {p.name: p.stat().st_size for p in sorted(HERE.iterdir()) if p.suffix != ".py"}
    print(json.dumps(sizes, indent=1), file=sys.stderr)


if __name__ == "__main__":
    main()

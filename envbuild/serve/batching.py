"""Adaptive batching: requests that queue while the model is busy go into one ``predict``.

A request's parsed input joins a queue; if a prediction slot (ENVBUILD_THREADS per
worker) is free it runs at once, alone: with no queue nothing waits. While every slot is
busy, requests pile up; a slot that frees takes the oldest one and every queued request
of the same kind (up to ENVBUILD_BATCH_MAX requests), concatenates their inputs, calls
``predict`` once and splits the answer back by row counts. Of the same kind means: a
DataFrame with the same columns and dtypes, or an array with the same dtype and trailing
shape, and the same params; anything else runs alone. ENVBUILD_BATCH_WAIT_MS > 0 lets a
slot also wait that long for more requests, only while others are being read.

A pandas JSON body can also arrive as a ``Pending``: decoded, not yet made a DataFrame.
Pending inputs of one kind (the same orient and columns, and in each column the same JSON
value types, so pandas infers the same dtypes for the whole as for each part) are merged
as JSON and made one DataFrame: MLflow's parse and schema cast then run once per model
call, not once per request (0.7 ms each on examples/sklearn-credit, more than its share
of a 16-request predict). A V2 request's columns likewise: decoded to arrays, concatenated
per column, made one DataFrame.

If the merged call fails, or its answer does not have one row per input row, each
request runs alone, so a bad row gets its own error and nobody else's. On by default
(``auto``) for flavors whose predict is row by row (scikit-learn, XGBoost, LightGBM,
CatBoost, ONNX, Keras/TensorFlow, PyTorch); a custom pyfunc may look across rows, so it
is batched only with ENVBUILD_BATCH=1.
"""

from __future__ import annotations

import collections
import concurrent.futures
import importlib
import json
import sys
import threading
import time
from typing import Any, Callable

ROW_WISE_LOADERS = frozenset(
    {
        "mlflow.sklearn",
        "mlflow.xgboost",
        "mlflow.lightgbm",
        "mlflow.catboost",
        "mlflow.onnx",
        "mlflow.keras",
        "mlflow.tensorflow",
        "mlflow.pytorch",
    }
)


def row_wise(metadata: Any) -> bool:
    """Whether the model's pyfunc loader is one whose predict treats rows independently."""
    flavors = getattr(metadata, "flavors", None) or {}
    conf = flavors.get("python_function") or {}
    return conf.get("loader_module") in ROW_WISE_LOADERS


class Pending:
    """A pandas JSON input (``split`` without an index, or ``records``) kept as decoded
    JSON, or a V2 request's columns (``columns``: name -> array) not yet made a DataFrame;
    ``build(payload)`` makes it the model's input (raising RequestError), and ``kind``
    (json_kind, columns_kind) is what two of them must share to be merged."""

    __slots__ = ("build", "kind", "orient", "payload", "rows")

    def __init__(
        self, orient: str, payload: Any, build: Callable[[Any], Any], kind: Any, rows: int
    ) -> None:
        self.orient = orient
        self.payload = payload
        self.build = build
        self.kind = kind
        self.rows = rows

    def resolve(self) -> Any:
        return self.build(self.payload)


# A larger request gains little from merging and is parsed at once: rows for any input;
# values for pandas JSON, whose kind (json_kind) looks at each one (~0.1 us a value)
MAX_PENDING_ROWS = 256
MAX_PENDING_VALUES = 4096
_INT64 = (-(2**63), 2**63)


def _value_kind(value: Any) -> Any:
    """What pandas' dtype inference sees of one JSON value; None for a nested value or an
    integer outside int64 (inferred as object), which are never merged."""
    kind = type(value)
    if kind is int:
        return kind if _INT64[0] <= value < _INT64[1] else None
    return kind if kind in (str, float, bool, type(None)) else None


def json_kind(orient: str, payload: Any) -> Any:
    """(orient, columns, the JSON value types of each column) of a pandas JSON input that
    may be merged with others of the same kind, or None. Same columns in the same order and
    the same value types per column make pandas infer the same dtypes for the merged frame
    as for each part, so its rows are the rows each part would have alone."""
    if orient == "split":
        if not isinstance(payload, dict) or set(payload) != {"columns", "data"}:
            return None
        names, rows = payload["columns"], payload["data"]
        if not isinstance(names, list) or not isinstance(rows, list):
            return None
        width = len(names)
        if any(not isinstance(row, list) or len(row) != width for row in rows):
            return None
        values = rows
    elif orient == "records":
        if not isinstance(payload, list) or not payload or not isinstance(payload[0], dict):
            return None
        names = list(payload[0])
        if any(not isinstance(rec, dict) or list(rec) != names for rec in payload):
            return None
        values = [list(rec.values()) for rec in payload]
    else:
        return None
    if not values or len(values) > MAX_PENDING_ROWS or not names:
        return None
    if len(values) * len(names) > MAX_PENDING_VALUES:
        return None
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    kinds: list[set[Any]] = [set() for _ in names]
    for row in values:
        for seen, value in zip(kinds, row):
            seen.add(_value_kind(value))
    if any(None in seen for seen in kinds):
        return None
    return orient, tuple(names), tuple(frozenset(seen) for seen in kinds)


def resolve(data: Any) -> Any:
    """The model's input: a Pending is parsed now, anything else is already parsed."""
    return data.resolve() if isinstance(data, Pending) else data


def columns_kind(arrays: dict[str, Any]) -> Any:
    """The kind (see Pending) of V2 columns (name -> numpy array, one row per element) that
    may be merged with others of the same kind: the same names in the same order, each with
    the same dtype and trailing shape, all of one length (else None). An object array
    (BYTES: str from JSON, bytes from the binary extension) also carries the Python types of
    its elements, since pandas infers its column's dtype from them (all str: a string
    column): the same types give the merged column the dtype each part would have."""
    lengths = {a.shape[0] if a.ndim else -1 for a in arrays.values()}
    if not arrays or len(lengths) != 1 or min(lengths) < 1 or max(lengths) > MAX_PENDING_ROWS:
        return None
    kinds = []
    for name, a in arrays.items():
        values = frozenset(type(x) for x in a.flat) if a.dtype.kind == "O" else None
        kinds.append((name, str(a.dtype), a.shape[1:], values))
    return "columns", tuple(kinds)


def merge_pending(inputs: list[Pending]) -> Any:
    """One model input from Pending inputs of one kind: their JSON (or V2 columns) joined,
    parsed once."""
    first = inputs[0]
    if first.orient == "split":
        rows = [row for item in inputs for row in item.payload["data"]]
        return first.build({"columns": first.payload["columns"], "data": rows})
    if first.orient == "columns":
        np: Any = importlib.import_module("numpy")
        return first.build(
            {
                name: np.concatenate([item.payload[name] for item in inputs])
                for name in first.payload
            }
        )
    return first.build([record for item in inputs for record in item.payload])


def batch_key(data: Any, params: dict[str, Any] | None) -> tuple[Any, int] | None:
    """(what must match to merge, rows) for a mergeable input; None runs it alone."""
    try:
        p = json.dumps(params, sort_keys=True) if params else ""
    except (TypeError, ValueError):
        return None
    if isinstance(data, Pending):
        return ("pending", data.kind, p), data.rows
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(data, pd.DataFrame):
        cols = tuple(str(c) for c in data.columns)
        if len(set(cols)) != len(cols):
            return None
        return ("frame", cols, tuple(str(t) for t in data.dtypes), p), len(data)
    np = sys.modules.get("numpy")
    if np is not None and isinstance(data, np.ndarray) and data.ndim >= 1:
        return ("array", data.shape[1:], str(data.dtype), p), int(data.shape[0])
    return None


def merge(inputs: list[Any]) -> Any:
    first = inputs[0]
    if isinstance(first, Pending):
        return merge_pending(inputs)
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(first, pd.DataFrame):
        return pd.concat(inputs, ignore_index=True)
    np: Any = importlib.import_module("numpy")
    return np.concatenate(inputs)


def split(raw: Any, rows: list[int]) -> list[Any] | None:
    """The merged answer cut back into one answer per request, or None if it cannot be."""
    total = sum(rows)
    bounds = []
    start = 0
    for n in rows:
        bounds.append((start, start + n))
        start += n
    pd = sys.modules.get("pandas")
    np = sys.modules.get("numpy")
    if pd is not None and isinstance(raw, (pd.DataFrame, pd.Series)):
        if len(raw) != total:
            return None
        return [raw.iloc[a:b].reset_index(drop=True) for a, b in bounds]
    if np is not None and isinstance(raw, np.ndarray):
        if raw.ndim == 0 or raw.shape[0] != total:
            return None
        return [raw[a:b] for a, b in bounds]
    if isinstance(raw, list) and len(raw) == total:
        return [raw[a:b] for a, b in bounds]
    if isinstance(raw, dict) and raw and np is not None:
        parts: list[dict[str, Any]] = [{} for _ in rows]
        for key, value in raw.items():
            arr = value if isinstance(value, np.ndarray) else None
            if arr is None or arr.ndim == 0 or arr.shape[0] != total:
                return None
            for part, (a, b) in zip(parts, bounds):
                part[key] = arr[a:b]
        return list(parts)
    return None


class _Item:
    __slots__ = ("data", "future", "key", "params", "rows")

    def __init__(self, data: Any, params: Any, key: Any, rows: int) -> None:
        self.data = data
        self.params = params
        self.key = key
        self.rows = rows
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()


class Batcher:
    """Runs ``predict(data, params)`` on ``pool``, merging what queues (see the module)."""

    def __init__(
        self,
        predict: Callable[[Any, Any], Any],
        pool: concurrent.futures.Executor,
        slots: int,
        max_requests: int,
        max_wait: float,
        record: Callable[[int, int], None] | None = None,
    ) -> None:
        self._predict = predict
        self._pool = pool
        self._slots = max(1, slots)
        self.max_requests = max(1, max_requests)
        self.max_wait = max_wait
        self._record = record
        self._cv = threading.Condition()
        self._queue: collections.deque[_Item] = collections.deque()
        self._running = 0
        self._arriving = 0

    def arriving(self, delta: int) -> None:
        """A request of this worker started (+1) or finished (-1) being read and parsed."""
        with self._cv:
            self._arriving += delta

    def submit(self, data: Any, params: dict[str, Any] | None) -> concurrent.futures.Future[Any]:
        found = batch_key(data, params)
        key, rows = found if found is not None else (None, 0)
        item = _Item(data, params, key, rows)
        with self._cv:
            self._queue.append(item)
            start = self._running < self._slots
            if start:
                self._running += 1
            self._cv.notify_all()
        if start:
            self._pool.submit(self._drain)
        return item.future

    def _drain(self) -> None:
        while True:
            with self._cv:
                batch = self._take()
                if not batch:
                    self._running -= 1
                    return
            self._run(batch)

    def _take(self) -> list[_Item]:
        """The next batch (called with the lock held): the oldest live item and its kind."""
        while self._queue:
            first = self._queue.popleft()
            if first.future.set_running_or_notify_cancel():
                break
        else:
            return []
        batch = [first]
        if first.key is None:
            return batch
        deadline = time.monotonic() + self.max_wait
        while True:
            self._collect(batch)
            remaining = deadline - time.monotonic()
            if len(batch) >= self.max_requests or remaining <= 0 or self._arriving == 0:
                return batch
            self._cv.wait(remaining)

    def _collect(self, batch: list[_Item]) -> None:
        key = batch[0].key
        kept: collections.deque[_Item] = collections.deque()
        while self._queue and len(batch) < self.max_requests:
            item = self._queue.popleft()
            if item.key == key:
                if item.future.set_running_or_notify_cancel():
                    batch.append(item)
            else:
                kept.append(item)
        kept.extend(self._queue)
        self._queue = kept

    def _run(self, batch: list[_Item]) -> None:
        if len(batch) > 1:
            try:
                raw = self._predict(merge([i.data for i in batch]), batch[0].params)
                parts = split(raw, [i.rows for i in batch])
            except Exception:
                parts = None  # each alone below: the failing request gets its own error
            if parts is not None:
                if self._record is not None:
                    self._record(len(batch), sum(i.rows for i in batch))
                for item, part in zip(batch, parts):
                    item.future.set_result(part)
                return
        for item in batch:
            try:
                result = self._predict(resolve(item.data), item.params)
            except BaseException as exc:
                item.future.set_exception(exc)
            else:
                item.future.set_result(result)
            if self._record is not None:
                self._record(1, item.rows)

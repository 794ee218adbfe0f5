"""A Prophet forecast fitted on 40 days of a synthetic daily series."""

import mlflow.prophet
import numpy as np
import pandas as pd
from prophet import Prophet

import _common

out = _common.out_dir()
rng = np.random.RandomState(_common.SEED)
days = pd.date_range("2024-01-01", periods=40, freq="D")
y = 10 + np.arange(40) * 0.3 + np.sin(np.arange(40) * 2 * np.pi / 7) + rng.normal(0, 0.2, 40)
model = Prophet(daily_seasonality=False, yearly_seasonality=False, uncertainty_samples=0)
model.fit(pd.DataFrame({"ds": days, "y": y}))
future = model.make_future_dataframe(periods=5).tail(5)[["ds"]].reset_index(drop=True)
mlflow.prophet.save_model(model, str(out), input_example=future)
_common.finish(out)

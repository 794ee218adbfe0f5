"""A Spark ML pipeline (VectorAssembler + LogisticRegression) on a local[1] session; the
pyfunc loader starts its own local Spark, so loading needs pyspark and a Java runtime."""

import os

import mlflow.spark
from mlflow.models import infer_signature
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import SparkSession

import _common

os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
out = _common.out_dir()
x, y = _common.table()
x = x.astype({"age": "float64"})
spark = (
    SparkSession.builder.master("local[1]")
    .config("spark.ui.enabled", "false")
    .config("spark.sql.shuffle.partitions", "1")
    .getOrCreate()
)
frame = x.copy()
frame["label"] = y.astype("float64")
train = spark.createDataFrame(frame)
features = ["age", "income", "debt", "score"]
pipeline = Pipeline(
    stages=[
        VectorAssembler(inputCols=features, outputCol="features"),
        LogisticRegression(maxIter=10, regParam=0.01),
    ]
)
model = pipeline.fit(train)
example = x.head(5)
preds = model.transform(spark.createDataFrame(example)).select("prediction").toPandas()
signature = infer_signature(example, preds["prediction"])
mlflow.spark.save_model(model, str(out), input_example=example, signature=signature)
_common.finish(out)

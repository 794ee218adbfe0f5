"""A text-classification pipeline around a 1-layer BERT built from a config, with a
word-level tokenizer built here: nothing is downloaded from a hub."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import mlflow.transformers
import tokenizers
import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    PreTrainedTokenizerFast,
    pipeline,
)

import _common

out = _common.out_dir()
words = [
    "good",
    "bad",
    "great",
    "awful",
    "film",
    "movie",
    "plot",
    "actors",
    "fine",
    "boring",
    "fun",
    "slow",
]
vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
core.pre_tokenizer = pre_tokenizers.Whitespace()
tokenizer = PreTrainedTokenizerFast(
    tokenizer_object=core,
    unk_token="[UNK]",
    pad_token="[PAD]",
    cls_token="[CLS]",
    sep_token="[SEP]",
    model_max_length=32,
)
torch.manual_seed(0)
config = BertConfig(
    vocab_size=len(vocab),
    hidden_size=16,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=32,
    num_labels=2,
    id2label={0: "negative", 1: "positive"},
    label2id={"negative": 0, "positive": 1},
)
model = BertForSequenceClassification(config).eval()
pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
# MLflow's default requirements for a torch pipeline name torchvision, which this venv
# does not have (PyPI's torchvision does not import beside the local CPU torch): name them.
reqs = [
    f"transformers=={transformers.__version__}",
    f"tokenizers=={tokenizers.__version__}",
    f"torch=={torch.__version__.split('+')[0]}",
]
mlflow.transformers.save_model(
    pipe,
    str(out),
    input_example=["good film", "boring slow plot", "great actors"],
    pip_requirements=reqs,
)
_common.finish(out)

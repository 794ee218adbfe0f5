"""A tiny CPU nn.Sequential (4 -> 8 -> 2) saved with mlflow.pytorch."""

import mlflow.pytorch
import torch
from mlflow.models import infer_signature

import _common

torch.manual_seed(0)
out = _common.out_dir()
x, y = _common.numeric()
net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(net.parameters(), lr=0.1)
xt, yt = torch.from_numpy(x), torch.from_numpy(y)
for _ in range(20):
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(xt), yt).backward()
    opt.step()
net.eval()
example = x[:5]
with torch.no_grad():
    sig = infer_signature(example, net(torch.from_numpy(example)).numpy())
mlflow.pytorch.save_model(net, str(out), input_example=example, signature=sig)
_common.finish(out)

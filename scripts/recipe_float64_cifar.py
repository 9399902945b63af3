"""The torch ResNet-20 twin on a CIFAR-shaped npz (default /tmp/cifar_shaped.npz, or argv[1])
with He et al.'s recipe as `run --recipe he-resnet --epochs 4 --batch-size 32` trains it on
2048 images (256 steps): the first 10 training losses in float32 against float64. Shows
how far float32 rounding alone moves the early loss curve at lr 0.1 (recipe-check's limit)."""
import sys

import numpy as np, torch
from twinbench.data.dataset import epoch_order, batches
from twinbench.data import augment
from twinbench.models import spec_module, twin_module
from twinbench.models.resnet import torch_weights as tw
from twinbench.recipe import RECIPES
from twinbench.stacks.torch_optim import Stepper
from twinbench.stacks.torch_stack import loss_for
z = np.load(sys.argv[1] if len(sys.argv) > 1 else "/tmp/cifar_shaped.npz"); x, y = z["x_train"], z["y_train"]
class D: pass
d = D(); d.x_train, d.y_train, d.x_test, d.y_test = x, y, z["x_test"], z["y_test"]
spec = spec_module("resnet").ResNetSpec()
w0 = spec.init_weights(0); fam = twin_module("resnet", "torch")
r = RECIPES["he-resnet"]; cfg = r.optimizer.for_steps(256)
order = epoch_order(len(y), 0, 0)
xa = augment.augmented_epoch(x, order, r.augment, 0, 0, None)
sl = batches(len(order), 32)[:10]
def run(dtype):
    m = fam.build(spec, 0)
    m.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tw.to_torch(spec, w0).items()})
    m = m.to(dtype).train(); opt = Stepper(m.parameters(), cfg); lf = loss_for("logits", r.loss); out = []
    for s in sl:
        xb = torch.from_numpy(xa[s].transpose(0, 3, 1, 2).copy()).to(dtype); yb = torch.from_numpy(y[order][s])
        opt.zero_grad(); loss = lf(m(xb), yb); loss.backward(); opt.step(); out.append(float(loss))
    return np.array(out)
a, b = run(torch.float32), run(torch.float64)
print("torch eager float32 vs float64, first 10 losses, relative:", " ".join(f"{v:.0e}" for v in np.abs(a - b) / b))

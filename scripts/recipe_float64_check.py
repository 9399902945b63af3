"""The torch ResNet twin on `verify`'s recipe probe (8x8 digits, the probe's capped lr and
crop padding): each recipe's 10 steps in float32 against float64, per step, the loss and
the worst tensor's update (norm-wise relative). The figures behind resnet's recipe
tolerances (models/resnet/spec.py). Usage:
    PYTHONPATH=src python scripts/recipe_float64_check.py he-resnet adagrad ..."""
import sys, types
import numpy as np, torch
from twinbench.data.registry import DATASETS
from twinbench.models import spec_module, twin_module
from twinbench.models.resnet import torch_weights as tw
from twinbench.parity.probe import recipe_batches, TRAJECTORY_STEPS, PROBE_MAX_LR
from twinbench.recipe import RECIPES
from twinbench.stacks.torch_optim import Stepper
from twinbench.stacks.torch_stack import loss_for
data = DATASETS["digits-8x8"].loader(0, None, None)
spec = spec_module("resnet").spec_for(data).without_dropout()
w0 = spec.init_weights(0)
fam = twin_module("resnet", "torch")
class S:  # the stack bits recipe_batches needs
    def to_native(self, x): return x.transpose(0, 3, 1, 2).copy(order="C") if x.ndim == 4 else x
job = types.SimpleNamespace(run=types.SimpleNamespace(seed=0, batch_size=32))
def run(recipe, dtype):
    torch.manual_seed(0)
    m = fam.build(spec, 0)
    m.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tw.to_torch(spec, w0).items()})
    m = m.to(dtype); m.train()
    cfg = recipe.optimizer.for_steps(TRAJECTORY_STEPS)
    cfg = cfg.model_copy(update={"learning_rate": min(cfg.learning_rate, PROBE_MAX_LR)})
    opt = Stepper(m.parameters(), cfg); lf = loss_for("logits", recipe.loss); out = []
    for xb, yb in recipe_batches(S(), job, data, recipe):
        opt.zero_grad(); loss = lf(m(torch.from_numpy(xb).to(dtype)), torch.from_numpy(yb)); loss.backward(); opt.step()
        out.append((float(loss), {k: v.detach().double().numpy().copy()
                                  for k, v in m.named_parameters()}))
    return out
for name in sys.argv[1:]:
    a, b = run(RECIPES[name], torch.float32), run(RECIPES[name], torch.float64)
    worst = [abs(a[s][0] - b[s][0]) / abs(b[s][0]) for s in range(10)]
    print(name, "loss f32 vs f64 per step:", " ".join(f"{x:.0e}" for x in worst))
    # update error per step, norm-wise per tensor, against float64
    m0 = fam.build(spec, 0); m0.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tw.to_torch(spec, w0).items()})
    w00 = {k: v.detach().double().numpy() for k, v in m0.named_parameters()}
    ups = []
    for s in range(10):
        wa, wb = a[s][1], b[s][1]
        ups.append(max(np.linalg.norm((wa[k]-w00[k])-(wb[k]-w00[k]))/max(np.linalg.norm(wb[k]-w00[k]),1e-30) for k in wb))
    print(name, "update f32 vs f64 per step:", " ".join(f"{x:.0e}" for x in ups))

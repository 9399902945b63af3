"""Known traps between the frameworks, each shown handled."""

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from twinbench.config import OptimizerConfig  # noqa: E402
from twinbench.stacks.torch_stack import KerasEpsilonAdam  # noqa: E402


def keras_adam_reference(w, grads, cfg: OptimizerConfig):
    """Keras 3's Adam update, written out in numpy (keras/src/optimizers/adam.py)."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        alpha = cfg.learning_rate * np.sqrt(1 - cfg.beta_2**t) / (1 - cfg.beta_1**t)
        m += (g - m) * (1 - cfg.beta_1)
        v += (g * g - v) * (1 - cfg.beta_2)
        w = w - m * alpha / (np.sqrt(v) + cfg.epsilon)
    return w


def run_torch_adam(opt_cls, w0, grads, **kw):
    p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    opt = opt_cls([p], **kw)
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return p.detach().numpy()


def test_adam_epsilon_placement_is_reconciled():
    # Tiny gradients make epsilon matter: exactly where the two placements differ.
    cfg = OptimizerConfig(epsilon=1e-3)
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(50)
    grads = [rng.standard_normal(50) * 1e-3 for _ in range(5)]
    want = keras_adam_reference(w0.copy(), grads, cfg)
    ours = run_torch_adam(KerasEpsilonAdam, w0, grads, cfg=cfg)
    plain = run_torch_adam(torch.optim.Adam, w0, grads, lr=cfg.learning_rate,
                           betas=(cfg.beta_1, cfg.beta_2), eps=cfg.epsilon)
    assert np.allclose(ours, want, rtol=0, atol=1e-12)
    assert np.abs(plain - want).max() > 1e-5  # the trap: plain torch Adam drifts


@pytest.mark.parametrize("backend, auto", [("tensorflow", False), ("jax", True),
                                           ("torch", False)])
def test_keras_jit_compile_auto_resolves_differently_per_backend(backend, auto):
    """Why every stack sets jit_compile explicitly: "auto" means XLA on JAX only."""
    pytest.importorskip(backend)
    code = ("import keras; m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]);"
            "m.compile(loss='mse', jit_compile='auto'); print(m.jit_compile)")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == str(auto), out.stderr[-500:]

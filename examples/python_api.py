"""The Python API with live objects: a PyTorch module and numpy arrays in, results out.

    python examples/python_api.py    # two stacks, one epoch: a minute or two on a laptop

Each cell runs in its own process, so the module is rebuilt there from its class (defined
in examples/torch_mnist.py) and the arrays are saved into the run folder first. The call
sits under `if __name__ == "__main__":`, as it must: the cells import this file's
neighbours, never this script.
"""

from pathlib import Path
import sys

import twinbench
from twinbench.data.digits import load_digits

sys.path.insert(0, str(Path(__file__).parent))
from torch_mnist import Net  # noqa: E402


if __name__ == "__main__":
    d = load_digits(seed=0)  # scikit-learn's digits at 28x28, offline
    results = twinbench.run(model=Net(), data=(d.x_train, d.y_train, d.x_test, d.y_test),
                            stacks=("torch", "keras-jax"), epochs=1, loadgen=False,
                            latency_calls=20)
    for c in results.cells:
        print(c.stack, c.status, c.params, c.metrics.get("accuracy"), c.settings.get("loss"))

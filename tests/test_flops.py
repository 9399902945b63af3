"""Analytic FLOPs per sample (from each spec) against torch.utils.flop_counter, which
counts 2 FLOPs per multiply-add of every matmul and convolution the torch twin runs."""

import pytest

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from twinbench.models import twin_module  # noqa: E402
from twinbench.models.bilstm.spec import BiLSTMSpec  # noqa: E402
from twinbench.models.cnn.spec import CNNSpec  # noqa: E402
from twinbench.models.resnet.spec import ResNetSpec  # noqa: E402
from twinbench.models.textcnn.spec import TextCNNSpec  # noqa: E402
from twinbench.models.transformer.spec import TransformerSpec  # noqa: E402


def counted(family: str, spec, x) -> float:
    model = twin_module(family, "torch").build(spec, 0)
    with FlopCounterMode(display=False) as fc:  # grad mode: no fused inference kernels
        model(x)
    return fc.get_total_flops()


@pytest.mark.parametrize("family, spec, shape", [
    ("cnn", CNNSpec(), (3, 1, 28, 28)),
    ("cnn", CNNSpec(input_hwc=(32, 32, 3), filters=(16, 32)), (2, 3, 32, 32)),
    ("textcnn", TextCNNSpec(vocab=50, length=24), None),
    ("resnet", ResNetSpec(input_hwc=(9, 9, 3), depth=8), (2, 3, 9, 9)),  # odd: ceil(h / 2)
])
def test_fixed_size_models_match_the_flop_counter(family, spec, shape):
    x = torch.randn(shape) if shape else torch.randint(2, 50, (3, spec.length))
    n = x.shape[0]
    assert counted(family, spec, x) == pytest.approx(n * spec.forward_flops(), rel=0.01)


def test_bilstm_matches_the_flop_counter_per_valid_token():
    # Unequal lengths: torch then runs the packed sequence step by step (mm ops the counter
    # sees); equal lengths take a fused LSTM kernel it does not count.
    spec = BiLSTMSpec(vocab=50, length=24)
    lengths = [24, 17, 5]
    ids = torch.randint(2, 50, (3, 24))
    for i, n in enumerate(lengths):
        ids[i, n:] = 0
    expected = sum(spec.forward_flops(length=n) for n in lengths)
    assert counted("bilstm", spec, ids) == pytest.approx(expected, rel=0.01)


def test_transformer_matches_except_the_attention_products():
    # flop_counter has no formula for CPU scaled_dot_product_attention, so the counted
    # figure lacks QK^T and AV: 2 * 2 L^2 d per block, which the analytic count includes.
    spec = TransformerSpec(vocab=50, length=24)
    ids = torch.randint(2, 50, (2, 24))
    attention = spec.blocks * 2 * 2 * spec.length ** 2 * spec.dim
    assert counted("transformer", spec, ids) == pytest.approx(
        2 * (spec.forward_flops() - attention), rel=0.01)


def test_best_peak_and_efficiency_by_hand():
    from twinbench.measure.peak import best_peak, efficiency

    low = {"gflops_s": 105.0, "n": 1024, "blas": "x", "method": "best of 10"}
    high = {"gflops_s": 200.0, "n": 1024, "blas": "x", "method": "best of 10"}
    peak = best_peak(low, high)
    assert peak["gflops_s"] == 200.0 and peak["readings_gflops_s"] == [105.0, 200.0]
    assert "higher of 2 readings" in peak["method"]
    # 1e6 FLOPs/sample: training 3e6 x 1e4 samples/s = 30 GFLOP/s = 15% of 200;
    # inference 1e6 x 5e4 = 50 GFLOP/s = 25%
    e = efficiency(1e6, 1e4, 5e4, peak)
    assert e["train_gflops_s"] == pytest.approx(30.0) and e["train_pct_peak"] == pytest.approx(15.0)
    assert e["infer_gflops_s"] == pytest.approx(50.0) and e["infer_pct_peak"] == pytest.approx(25.0)

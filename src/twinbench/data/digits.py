"""Task `digits`: scikit-learn's bundled 8x8 digits (1,797 images, offline), upsampled to
28x28x1 so the MNIST models apply unchanged.

Upsampling is bilinear with aligned corners, written as two small interpolation matrices
(28x8) so that it is exact, framework-free and identical on every machine.
"""

from __future__ import annotations

import numpy as np

from twinbench.data.dataset import Dataset

SIZE = 28
SOURCE_MAX = 16.0  # the 8x8 digits are 4-bit intensities 0..16


def interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) bilinear weights, aligned corners: row i samples x = i*(n_in-1)/(n_out-1)."""
    pos = np.linspace(0.0, n_in - 1, n_out)
    lo = np.clip(np.floor(pos).astype(int), 0, n_in - 2)
    frac = pos - lo
    m = np.zeros((n_out, n_in), dtype=np.float64)
    m[np.arange(n_out), lo] = 1.0 - frac
    m[np.arange(n_out), lo + 1] += frac
    return m


def upsample(images: np.ndarray, size: int = SIZE) -> np.ndarray:
    """(N, h, w) -> (N, size, size) bilinear."""
    rows = interp_matrix(size, images.shape[1])
    cols = interp_matrix(size, images.shape[2])
    return np.einsum("ih,nhw,jw->nij", rows, images, cols)


def load_digits(seed: int, test_fraction: float = 0.2, size: int = SIZE) -> Dataset:
    """Stratified, seeded 80/20 split of the digits upsampled to `size` (8: as bundled);
    pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    raw = sk_load_digits()
    images = raw.images / SOURCE_MAX  # (1797, 8, 8) in [0, 1]
    if size != images.shape[1]:
        images = upsample(images, size)  # (1797, size, size)
    x = np.clip(images, 0.0, 1.0).astype(np.float32)[..., None]  # (N, size, size, 1)
    y = raw.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    return Dataset(
        name="digits" if size == SIZE else f"digits-{size}x{size}",
        x_train=np.ascontiguousarray(x_tr),
        y_train=y_tr,
        x_test=np.ascontiguousarray(x_te),
        y_test=y_te,
        classes=10,
        provenance={
            "source": "sklearn.datasets.load_digits (8x8, bundled)",
            "transform": f"bilinear upsample to {size}x{size}, /16" if size != 8 else "/16",
            "split": f"stratified {1 - test_fraction:.0%}/{test_fraction:.0%}, seed {seed}",
        },
    )

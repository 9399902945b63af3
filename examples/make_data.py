"""Write the example data sets, offline: digits.npz (scikit-learn's bundled handwritten
digits at 28x28, split 80/20), sentiment.csv (twinbench's seeded synthetic sentiment
texts: a header row, text and label columns) and sentiment.npz (the same texts as token
ids, 64 per text: long enough for the text classifier's two strided Conv1D).

    python examples/make_data.py [OUT_DIR]
"""

import csv
import sys
from pathlib import Path

import numpy as np

from twinbench.data.digits import load_digits
from twinbench.data.text_sets import load_synthetic, to_dataset


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    d = load_digits(seed=0)
    np.savez_compressed(out / "digits.npz", x_train=d.x_train, y_train=d.y_train,
                        x_test=d.x_test, y_test=d.y_test)
    raw = load_synthetic(seed=0)
    with open(out / "sentiment.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        rows = list(zip(raw.train_texts, raw.train_labels)) + \
            list(zip(raw.test_texts, raw.test_labels))
        w.writerows((t, int(y)) for t, y in rows)
    ids = to_dataset("sentiment", raw, seed=0, length=64, holdout=None)
    np.savez_compressed(out / "sentiment.npz", x_train=ids.x_train, y_train=ids.y_train,
                        x_test=ids.x_test, y_test=ids.y_test)
    print(f"wrote digits.npz, sentiment.csv and sentiment.npz in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))

"""Write the example data sets, offline: digits.npz (scikit-learn's bundled handwritten
digits at 28x28, split 80/20) and sentiment.csv (twinbench's seeded synthetic sentiment
texts, a header row, text and label columns).

    python examples/make_data.py [OUT_DIR]
"""

import csv
import sys
from pathlib import Path

import numpy as np

from twinbench.data.digits import load_digits
from twinbench.data.text_sets import load_synthetic


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
    print(f"wrote {out / 'digits.npz'} and {out / 'sentiment.csv'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))

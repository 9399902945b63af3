"""`synthetic-sentiment`: an offline, seeded text task that rewards reading word order.

Generative process for one document (label y in {0 = negative, 1 = positive}, balanced):
1. Length n ~ Uniform{MIN_LEN..MAX_LEN} filler words, drawn from a Zipf(ZIPF_A) law over
   FILLER filler words ("w0" most frequent), like natural text.
2. k ~ Uniform{1..3} sentiment slots at random positions. Each slot says the label's
   polarity, but is *negated* with probability P_NEGATE: the slot then holds a word of the
   opposite polarity preceded, within NEGATION_WINDOW words, by a negator ("not", "never",
   "no"), which flips it back. Sentiment words come from SENTIMENT words per polarity.
3. With probability LABEL_NOISE the label is flipped (an irreducible error floor).

Why a bag of words cannot solve it: a negated slot puts an opposite-polarity word in the
bag, and with several slots the bag cannot tell which word a negator belongs to; only
the order (negator shortly before the word) resolves it. A sequence model can approach
1 - LABEL_NOISE; a bag-of-words model stays clearly below it.
"""

from __future__ import annotations

import numpy as np

FILLER, ZIPF_A = 1000, 1.2
SENTIMENT = 15
MIN_LEN, MAX_LEN = 4, 18
P_NEGATE, NEGATION_WINDOW = 0.35, 2
LABEL_NOISE = 0.03
NEGATORS = ("not", "never", "no")


def _filler(rng: np.random.Generator, n: int) -> list[str]:
    ranks = np.arange(1, FILLER + 1)
    p = ranks ** -ZIPF_A
    return [f"w{i}" for i in rng.choice(FILLER, size=n, p=p / p.sum())]


def document(rng: np.random.Generator, label: int) -> str:
    words = _filler(rng, int(rng.integers(MIN_LEN, MAX_LEN + 1)))
    for _ in range(int(rng.integers(1, 4))):
        polarity = label
        pos = int(rng.integers(0, len(words) + 1))
        slot = []
        if rng.random() < P_NEGATE:
            polarity = 1 - label
            gap = _filler(rng, int(rng.integers(0, NEGATION_WINDOW)))
            slot = [str(rng.choice(NEGATORS)), *gap]
        slot.append(f"{'good' if polarity else 'bad'}{int(rng.integers(SENTIMENT))}")
        words[pos:pos] = slot
    return " ".join(words)


def generate(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng([seed, 7])
    labels = rng.permutation(np.arange(n) % 2)
    texts = [document(rng, int(y)) for y in labels]
    flip = rng.random(n) < LABEL_NOISE
    return texts, np.where(flip, 1 - labels, labels).astype(np.int64)

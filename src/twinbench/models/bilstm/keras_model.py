"""Keras 3 twin of `bilstm` (see spec.py). Diff me against torch_model.py.

Keras's layout is the canonical one. The padding mask is passed explicitly from the
Embedding (`mask_zero=True`) to the Bidirectional LSTM, so it holds on every backend.
"""

from __future__ import annotations

import keras
from keras import layers

from twinbench.models.bilstm.spec import BiLSTMSpec
from twinbench.models.keras_saving import saveable


@saveable(BiLSTMSpec)
class BiLSTM(keras.Model):
    def __init__(self, spec: BiLSTMSpec, seed: int = 0, **kwargs: object) -> None:
        super().__init__(name="bilstm", **kwargs)
        self.embedding = layers.Embedding(spec.vocab, spec.embed, mask_zero=True,
                                          name="embedding")
        self.bilstm = layers.Bidirectional(layers.LSTM(spec.units, name="lstm"), name="bilstm")
        self.dense = layers.Dense(spec.classes, name="dense")

    def call(self, ids, training=False):  # ids: (B, L) int
        mask = self.embedding.compute_mask(ids)  # (B, L): id != 0
        x = self.embedding(ids)  # (B, L, 32)
        x = self.bilstm(x, mask=mask, training=training)  # (B, 64), forward then backward
        return self.dense(x)  # (B, classes) logits


def build(spec: BiLSTMSpec, seed: int) -> BiLSTM:
    model = BiLSTM(spec, seed=seed)
    model(keras.ops.ones((1, spec.length), dtype="int32"))  # creates the variables
    return model

"""Keras 3 twin of `textcnn` (see spec.py). Diff me against torch_model.py."""

from __future__ import annotations

import keras
from keras import layers, ops

from twinbench.models.keras_saving import saveable
from twinbench.models.textcnn.spec import TextCNNSpec


def masked_max(h, lengths, width: int):
    """Max over valid positions of ReLU outputs h: (B, P, F) -> (B, F)."""
    last = ops.maximum(lengths - width + 1, 1)  # (B,) valid positions per text
    valid = ops.arange(ops.shape(h)[1])[None, :] < last[:, None]  # (B, P)
    return ops.max(h * ops.cast(valid, h.dtype)[:, :, None], axis=1)


@saveable(TextCNNSpec)
class TextCNN(keras.Model):
    def __init__(self, spec: TextCNNSpec, seed: int = 0, **kwargs: object) -> None:
        super().__init__(name="textcnn", **kwargs)
        self.widths = spec.widths
        self.embedding = layers.Embedding(spec.vocab, spec.embed, name="embedding")
        self.convs = {f"conv{w}": layers.Conv1D(spec.filters, w, name=f"conv{w}")
                      for w in spec.widths}
        self.dropout = layers.Dropout(spec.dropout, seed=seed, name="dropout")
        self.dense = layers.Dense(spec.classes, name="dense")

    def call(self, ids, training=False):  # ids: (B, L) int
        lengths = ops.sum(ops.cast(ids != 0, "int32"), axis=1)  # (B,)
        x = self.embedding(ids)  # (B, L, 64)
        pooled = [masked_max(ops.relu(self.convs[f"conv{w}"](x)), lengths, w)  # (B, 64) each
                  for w in self.widths]
        x = self.dropout(ops.concatenate(pooled, axis=1), training=training)  # (B, 192)
        return self.dense(x)  # (B, classes) logits


def build(spec: TextCNNSpec, seed: int) -> TextCNN:
    model = TextCNN(spec, seed=seed)
    model(keras.ops.ones((1, spec.length), dtype="int32"))  # creates the variables
    return model

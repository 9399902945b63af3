"""Keras 3 twin of `transformer` (see spec.py). Diff me against torch_model.py."""

from __future__ import annotations

import keras
from keras import layers, ops

from twinbench.models.keras_saving import saveable
from twinbench.models.transformer.spec import TransformerSpec


class TransformerBlock(layers.Layer):
    def __init__(self, spec: TransformerSpec, seed: int = 0, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.attention = layers.MultiHeadAttention(spec.heads, spec.head_dim, name="attention")
        self.norm1 = layers.LayerNormalization(epsilon=spec.epsilon, name="norm1")
        self.ffn1 = layers.Dense(spec.ff, name="ffn1")
        self.ffn2 = layers.Dense(spec.dim, name="ffn2")
        self.norm2 = layers.LayerNormalization(epsilon=spec.epsilon, name="norm2")
        self.dropout = layers.Dropout(spec.dropout, seed=seed, name="dropout")

    def call(self, x, keep, training=False):  # x: (B, L, 64)
        a = self.attention(x, x, attention_mask=keep[:, None, :], training=training)  # 1: attend
        x = self.norm1(x + self.dropout(a, training=training))
        f = self.ffn2(ops.relu(self.ffn1(x)))  # (B, L, 128) -> (B, L, 64)
        return self.norm2(x + self.dropout(f, training=training))


@saveable(TransformerSpec)
class Transformer(keras.Model):
    def __init__(self, spec: TransformerSpec, seed: int = 0, **kwargs: object) -> None:
        super().__init__(name="transformer", **kwargs)
        self.token_embedding = layers.Embedding(spec.vocab, spec.dim, name="token_embedding")
        self.position_embedding = layers.Embedding(spec.length, spec.dim,
                                                   name="position_embedding")
        self.blocks = [TransformerBlock(spec, seed + i, name=f"block{i + 1}")
                       for i in range(spec.blocks)]
        self.dense = layers.Dense(spec.classes, name="dense")

    def call(self, ids, training=False):  # ids: (B, L) int
        keep = ids != 0  # (B, L)
        positions = ops.arange(ops.shape(ids)[1])
        x = self.token_embedding(ids) + self.position_embedding(positions)[None]  # (B, L, 64)
        for block in self.blocks:
            x = block(x, keep, training=training)
        keep_f = ops.cast(keep, x.dtype)[..., None]  # (B, L, 1)
        pooled = ops.sum(x * keep_f, axis=1) / ops.sum(keep_f, axis=1)  # masked mean: (B, 64)
        return self.dense(pooled)  # (B, classes) logits


def build(spec: TransformerSpec, seed: int) -> Transformer:
    model = Transformer(spec, seed=seed)
    model(keras.ops.ones((1, spec.length), dtype="int32"))  # creates the variables
    return model

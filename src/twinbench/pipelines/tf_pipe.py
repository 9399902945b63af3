"""tf.data: `range(N) -> map(sample, AUTOTUNE, deterministic) -> batch -> prefetch(AUTOTUNE)`,
the transforms in TensorFlow ops (tf.strings and a lookup table for text).

The dataset is built (and its map function traced) once; each epoch's plan is written
into three variables the map reads (order, shifts, flips), so no epoch re-traces.
Text standardisation reproduces `twinbench.data.text.tokenize` in RE2: every token of
TOKEN_PATTERN becomes " token " and every other character a space; splitting on
whitespace then yields exactly the tokens `re.findall` finds (tested).
"""

from __future__ import annotations


import numpy as np
import tensorflow as tf

from twinbench.data.text import OOV, PAD, TOKEN_PATTERN
from twinbench.pipelines import PipelineInfo
from twinbench.pipelines.spec import EpochPlan, PipelineData, PlannedDataset

SEPARATE_TOKENS = r"(" + TOKEN_PATTERN + r")|[^a-z0-9]"


def standardize(texts: tf.Tensor) -> tf.Tensor:
    """Lower-case (Unicode, as str.lower) and put spaces around every token."""
    return tf.strings.regex_replace(tf.strings.lower(texts, encoding="utf-8"),
                                    SEPARATE_TOKENS, r" \1 ")


def at_least_one_token(ids: tf.Tensor) -> tf.Tensor:
    """(..., L) ids: an all-padding row becomes [OOV, PAD, ...], as `encode` does."""
    empty = tf.reduce_all(tf.equal(ids, PAD), axis=-1, keepdims=True)
    first = tf.equal(tf.range(tf.shape(ids)[-1]), 0)
    return tf.where(empty & first, tf.constant(OOV, ids.dtype), ids)


class PlanVariables:
    """The epoch plan, as variables a traced map function reads."""

    def __init__(self, n: int) -> None:
        self.order = tf.Variable(tf.zeros([n], tf.int64), trainable=False)
        self.offsets = tf.Variable(tf.zeros([n, 2], tf.int64), trainable=False)
        self.flips = tf.Variable(tf.zeros([n], tf.bool), trainable=False)

    def assign(self, plan: EpochPlan) -> None:
        self.order.assign(plan.order)
        self.offsets.assign(plan.offsets)
        self.flips.assign(plan.flips)


class TfPipeline(PlannedDataset):
    def __init__(self, info: PipelineInfo, data: PipelineData, batch_size: int) -> None:
        self.data, self.n = data, len(data.y)
        self.plan = PlanVariables(self.n)
        self.x, self.y = tf.constant(data.x), tf.constant(data.y)
        if data.kind == "text":
            init = tf.lookup.KeyValueTensorInitializer(
                tf.constant(data.vocab.tokens), tf.range(2, data.vocab.size, dtype=tf.int64))
            self.table = tf.lookup.StaticHashTable(init, default_value=OOV)
        fn = self._text if data.kind == "text" else self._image
        self.dataset = (tf.data.Dataset.range(self.n)
                        .map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                        .batch(batch_size).prefetch(tf.data.AUTOTUNE))
        self.settings = {"map": "per sample, num_parallel_calls=AUTOTUNE, deterministic",
                         "batch": batch_size, "prefetch": "AUTOTUNE",
                         "threadpool": "tf.data default (schedulable CPUs)"}

    def _image(self, pos: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        d = self.data
        i = tf.gather(self.plan.order, pos)
        img = tf.gather(self.x, i)  # (H, W, C)
        if d.augment:
            h, w, c = d.x.shape[1:]
            off = tf.gather(self.plan.offsets, i)
            padded = tf.pad(img, [[d.pad, d.pad], [d.pad, d.pad], [0, 0]])
            img = tf.slice(padded, tf.stack([off[0], off[1], 0]), [h, w, c])
            if d.flip:
                img = tf.where(tf.gather(self.plan.flips, i), tf.reverse(img, [1]), img)
        return (img - d.mean) / np.sqrt(d.var), tf.gather(self.y, i)

    def _text(self, pos: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        i = tf.gather(self.plan.order, pos)
        tokens = tf.strings.split(standardize(tf.gather(self.x, i)))  # (T,) strings
        ids = self.table.lookup(tokens)[: self.data.length]
        ids = tf.pad(ids, [[0, self.data.length - tf.size(ids)]])
        return at_least_one_token(tf.reshape(ids, [self.data.length])), tf.gather(self.y, i)


def configure_threads(threads: int) -> None:
    """Before TensorFlow's first op (a stack's adapter does this itself)."""
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def make(info: PipelineInfo, data: PipelineData, batch_size: int, threads: int | None,
         layout: str, seed: int = 0) -> TfPipeline:
    if threads is not None:
        configure_threads(threads)
    return TfPipeline(info, data, batch_size)

"""Keras input stacks: `keras.utils.PyDataset`, and Keras preprocessing layers outside the
model (mapped over tf.data) or inside it (in front of the twin, in the train step).

Layers: `RandomTranslation` (constant 0 fill, nearest: whole-pixel shifts, per sample),
`RandomFlip("horizontal")` when flips are on, `Normalization(mean, variance)`; for text
`TextVectorization` with the tf.data pipeline's standardisation, whitespace split and the
training vocabulary (ids: 0 padding, 1 OOV, then the vocabulary, as `encode`).

Randomness: outside the model the layers take each sample's shift and flip from the
epoch plan (`Planned*` below read them from the layer's dict input instead of drawing
them), so their batches equal the numpy reference bit for bit. Inside the model they
draw from their own seeded generators, as a user's model would: the same kinds of shifts
and flips (checked against the transforms' support), not the same draws. Note also that
Keras's RandomTranslation draws a continuous shift in [-pad, pad] and rounds it, so
the end shifts (+-pad) come half as often as with an integer draw.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import keras
import numpy as np

from twinbench.data.text import OOV, PAD
from twinbench.measure.timing import StepTimer
from twinbench.pipelines import PipelineInfo
from twinbench.pipelines.spec import (
    EpochPlan,
    PipelineData,
    PlannedDataset,
    encode_texts,
    transform_images,
)


class Batches(keras.utils.PyDataset):
    """Batch b of the epoch plan: the numpy reference transforms, in a worker thread."""

    def __init__(self, data: PipelineData, batch_size: int, workers: int) -> None:
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=10)
        self.data, self.batch_size = data, batch_size
        self.index = data.vocab.index() if data.kind == "text" else None
        self.plan: EpochPlan | None = None

    def __len__(self) -> int:
        return math.ceil(len(self.data.y) / self.batch_size)

    def __getitem__(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        ids = self.plan.order[b * self.batch_size:(b + 1) * self.batch_size]
        if self.data.kind == "text":
            return encode_texts(self.data, ids, self.index), self.data.y[ids]
        return transform_images(self.data, ids, self.plan), self.data.y[ids]


class PyDatasetPipeline:
    def __init__(self, info: PipelineInfo, data: PipelineData, batch_size: int) -> None:
        self.ds, self.n = Batches(data, batch_size, info.workers), len(data.y)
        self.fit_prepared = False
        self.settings = {"workers": info.workers, "use_multiprocessing": False,
                         "max_queue_size": 10, "transforms": "numpy, per batch"}

    def iterate(self, plan: EpochPlan) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # What fit does with it: no public API iterates a PyDataset with its workers.
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

        self.ds.plan = plan
        adapter = PyDatasetAdapter(self.ds, shuffle=False)
        adapter.on_epoch_begin()
        try:
            yield from adapter.get_numpy_iterator()
        finally:
            adapter.on_epoch_end()

    def to_numpy(self, batch) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(batch[0]), np.asarray(batch[1])

    def train(self, stack, plan: EpochPlan, timer: StepTimer) -> float:
        self.ds.plan = plan
        if not self.fit_prepared:  # see KerasStack.prepare_fit: keeps batch 0 first
            stack.prepare_fit(*self.ds[0])
            self.fit_prepared = True
        return stack.fit_epoch(self.ds, self.n, timer)


class PlannedTranslation(keras.layers.RandomTranslation):
    """RandomTranslation taking each sample's (tx, ty) from data["translations"]."""

    def get_random_transformation(self, data, training=True, seed=None):
        return {"translations": data["translations"],
                "input_shape": self.backend.shape(data["images"])}


class PlannedFlip(keras.layers.RandomFlip):
    """RandomFlip taking each sample's flip (1.0 or 0.0) from data["flips"]."""

    def get_random_transformation(self, data, training=True, seed=None):
        flips = self.backend.numpy.greater(data["flips"], 0.5)
        return {"flips": self.backend.numpy.reshape(flips, (-1, 1, 1, 1)),
                "input_shape": self.backend.shape(data["images"])}


class AtLeastOneToken(keras.layers.Layer):
    """(B, L) ids: an all-padding row becomes [OOV, PAD, ...], as `encode` does."""

    def call(self, ids):
        ops = keras.ops
        empty = ops.all(ops.equal(ids, PAD), axis=-1, keepdims=True)
        first = ops.equal(ops.arange(ops.shape(ids)[-1]), 0)
        return ops.where(ops.logical_and(empty, first), ops.cast(OOV, ids.dtype), ids)


def text_vectorization(data: PipelineData, standardize: bool) -> keras.layers.Layer:
    """standardize=False: the caller standardises first. On JAX and torch Keras calls a
    custom `standardize` with numpy arrays, which cannot run inside tf.data's graph."""
    from twinbench.pipelines import tf_pipe  # TextVectorization needs TF anyway

    return keras.layers.TextVectorization(
        standardize=tf_pipe.standardize if standardize else None, split="whitespace",
        vocabulary=list(data.vocab.tokens), output_mode="int",
        output_sequence_length=data.length)


def image_layers(data: PipelineData, seed: int, planned: bool) -> list[keras.layers.Layer]:
    layers: list[keras.layers.Layer] = []
    if data.augment:
        h, w = data.x.shape[1:3]
        shift = PlannedTranslation if planned else keras.layers.RandomTranslation
        layers.append(shift(data.pad / h, data.pad / w, fill_mode="constant", fill_value=0.0,
                            interpolation="nearest", seed=seed))
        if data.flip:
            flip = PlannedFlip if planned else keras.layers.RandomFlip
            layers.append(flip("horizontal", seed=seed + 1))
    norm = keras.layers.Normalization(mean=data.mean, variance=data.var)
    norm.build((None, *data.x.shape[1:]))  # inside tf.data on JAX or torch it cannot build
    return [*layers, norm]


class LayersOutside(PlannedDataset):
    """tf.data: range(N) -> batch -> map(Keras layers, AUTOTUNE) -> prefetch(AUTOTUNE), the
    layers on whole batches as Keras's guide maps them; on any backend (Keras runs its
    preprocessing layers with TensorFlow inside tf.data)."""

    def __init__(self, info: PipelineInfo, data: PipelineData, batch_size: int,
                 seed: int) -> None:
        import tensorflow as tf

        from twinbench.pipelines.tf_pipe import PlanVariables

        self.data, self.n, self.plan = data, len(data.y), PlanVariables(len(data.y))
        self.x, self.y = tf.constant(data.x), tf.constant(data.y)
        self.layers = ([text_vectorization(data, standardize=False)] if data.kind == "text"
                       else image_layers(data, seed, planned=True))
        self.dataset = (tf.data.Dataset.range(self.n).batch(batch_size)
                        .map(self._batch, num_parallel_calls=tf.data.AUTOTUNE,
                             deterministic=True).prefetch(tf.data.AUTOTUNE))
        self.settings = {"layers": [type(x).__name__ for x in self.layers],
                         "map": "per batch, num_parallel_calls=AUTOTUNE, deterministic",
                         "prefetch": "AUTOTUNE", "randomness": "epoch plan",
                         "text_standardize": "tf.strings in the map, then the layer"}

    def _batch(self, pos):  # pos: (B,) positions in the epoch
        import tensorflow as tf

        from twinbench.pipelines.tf_pipe import at_least_one_token, standardize

        ids = tf.gather(self.plan.order, pos)
        x, y = tf.gather(self.x, ids), tf.gather(self.y, ids)
        if self.data.kind == "text":
            return at_least_one_token(self.layers[0](standardize(x))), y
        shifts = tf.reverse(tf.gather(self.plan.offsets, ids), [1])  # (B, 2) (dx, dy)
        d = {"images": x, "translations": tf.cast(self.data.pad - shifts, tf.float32),
             "flips": tf.cast(tf.gather(self.plan.flips, ids), tf.float32)}
        for layer in self.layers[:-1]:  # shift, flip
            d = layer(d, training=True)
        return self.layers[-1](d["images"]), y  # Normalization


class LayersInside:
    """The layers in front of the twin: `model.fit` gets raw images (or raw strings) in
    the epoch's order and the preprocessing runs in the compiled train step (training=True
    only: inference skips the random layers)."""

    def __init__(self, info: PipelineInfo, data: PipelineData, batch_size: int,
                 seed: int) -> None:
        self.data, self.batch_size = data, batch_size
        if data.kind == "text":
            self.front = [text_vectorization(data, standardize=True), AtLeastOneToken()]
        else:
            self.front = image_layers(data, seed, planned=False)
        self.settings = {"layers": [type(x).__name__ for x in self.front],
                         "randomness": f"Keras seed generators (seed {seed})",
                         "input": "raw arrays via model.fit, shuffle=False"}

    def _input(self) -> keras.KerasTensor:
        if self.data.kind == "text":
            return keras.Input(shape=(), dtype="string")
        return keras.Input(shape=self.data.x.shape[1:])

    def wrap(self, twin: keras.Model) -> keras.Model:
        """Given to the stack's adapter: the model it compiles and trains."""
        inp = x = self._input()
        for layer in self.front:
            x = layer(x)
        return keras.Model(inp, twin(x), name="preprocessing_and_twin")

    def front_model(self) -> keras.Model:
        inp = x = self._input()
        for layer in self.front:
            x = layer(x)
        return keras.Model(inp, x, name="preprocessing")

    def iterate(self, plan: EpochPlan):
        """The front alone, eagerly, on the raw batches (for the equivalence checks)."""
        model = self.front_model()
        order, b = plan.order, self.batch_size
        for i in range(0, len(order), b):
            ids = order[i:i + b]
            yield model(self.data.x[ids], training=True), self.data.y[ids]

    def to_numpy(self, batch) -> tuple[np.ndarray, np.ndarray]:
        return keras.ops.convert_to_numpy(batch[0]), np.asarray(batch[1])

    def train(self, stack, plan: EpochPlan, timer: StepTimer) -> float:
        x = self.data.x[plan.order]
        if x.dtype.kind == "U":  # fit rejects numpy's fixed-width unicode dtype
            x = x.astype(object)
        return stack.train_epoch(x, self.data.y[plan.order], timer)


def make(info: PipelineInfo, data: PipelineData, batch_size: int, threads: int | None,
         layout: str, seed: int = 0):
    if threads is not None and info.keras_backend == "tensorflow":
        from twinbench.pipelines.tf_pipe import configure_threads

        configure_threads(threads)
    if info.name.startswith("keras-pydataset"):
        return PyDatasetPipeline(info, data, batch_size)
    if info.name == "keras-layers-outside":
        return LayersOutside(info, data, batch_size, seed)
    return LayersInside(info, data, batch_size, seed)

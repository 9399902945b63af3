"""Keras layers that follow PyTorch's conventions where the two frameworks differ, so a
Keras twin of a PyTorch model can use them instead of silently computing another
function (the counterpart of torch_layers.py). Imported only by Keras twins."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="twinbench")
class TorchBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization with torch's moving-variance update: torch folds the
    *unbiased* batch variance (n / (n - 1)) into running_var, Keras the biased one; the
    normalisation itself uses the biased variance in both. Construct it with the Keras
    momentum (1 - torch's momentum) and torch's eps."""

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        mean, variance = ops.moments(inputs, axes=self._reduction_axes)
        n = ops.cast(ops.size(inputs), inputs.dtype) / ops.cast(ops.shape(inputs)[-1],
                                                                 inputs.dtype)
        unbiased = variance * n / (n - 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum
                                + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum
                                    + unbiased * (1.0 - self.momentum))
        return ops.batch_normalization(inputs, mean, variance, axis=self.axis,
                                       offset=self.beta if self.center else None,
                                       scale=self.gamma if self.scale else None,
                                       epsilon=self.epsilon)

"""A Keras model with a Lambda layer: it runs on the Keras stacks; the PyTorch stacks
are skipped, saying which layer has no converter.

    twinbench run --model examples/keras_lambda.py:with_lambda --data digits.npz
"""

import keras
from keras import layers


def with_lambda():
    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(8, 3, activation="relu")(inputs)
    x = layers.Lambda(lambda t: t * 2.0, name="double")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10)(x))

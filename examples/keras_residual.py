"""A small Functional residual model, after the "toy ResNet" of the Keras Functional API
guide (https://keras.io/guides/functional_api/#a-toy-resnet-model) with the
BatchNormalization a ResNet has after each convolution, for 28x28 grey images. It
downsamples with a strided convolution, as ResNets do, where the guide max-pools: on
images with a flat background, BatchNorm turns the background into equal values, and a
max pool over tied values has no single gradient (each framework picks its own element),
so the gradient checks could not verify the twins.

    twinbench run --model examples/keras_residual.py:toy_resnet --data digits.npz
"""

import keras
from keras import layers


def conv_bn(x, filters, **kwargs):
    x = layers.Conv2D(filters, 3, use_bias=False, **kwargs)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def toy_resnet():
    inputs = keras.Input(shape=(28, 28, 1), name="img")
    x = conv_bn(inputs, 32)
    block_1_output = conv_bn(x, 64, strides=3)

    x = conv_bn(block_1_output, 64, padding="same")
    x = layers.Conv2D(64, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    block_2_output = layers.add([x, block_1_output])

    x = conv_bn(block_2_output, 64, padding="same")
    x = layers.Conv2D(64, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    block_3_output = layers.add([x, block_2_output])

    x = layers.Conv2D(64, 3, activation="relu")(block_3_output)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs, outputs, name="toy_resnet")

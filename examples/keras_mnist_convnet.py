"""The Keras "Simple MNIST convnet" (https://keras.io/examples/vision/mnist_convnet/),
as written there: a Sequential model with a softmax head.

    twinbench run --model examples/keras_mnist_convnet.py:mnist_convnet --data digits.npz
"""

import keras
from keras import layers

num_classes = 10
input_shape = (28, 28, 1)


def mnist_convnet():
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )

"""A Keras Functional text classifier, after "Text classification from scratch"
(https://keras.io/examples/nlp/text_classification_from_scratch/): Embedding, two
strided Conv1D, GlobalMaxPooling1D, Dropout, Dense. One change: the example ends in
Dense(1, sigmoid) for two classes; here Dense(num_classes, softmax), the multi-class
form twinbench trains.

    twinbench run --model examples/keras_text_classifier.py:text_classifier --data sentiment.npz
"""

import keras
from keras import layers

max_features = 20000
embedding_dim = 128
num_classes = 2


def text_classifier():
    # A integer input for vocab indices.
    inputs = keras.Input(shape=(None,), dtype="int64")

    # Next, we add a layer to map those vocab indices into a space of dimensionality
    # 'embedding_dim'.
    x = layers.Embedding(max_features, embedding_dim)(inputs)
    x = layers.Dropout(0.5)(x)

    # Conv1D + global max pooling
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.GlobalMaxPooling1D()(x)

    # We add a vanilla hidden layer:
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)

    predictions = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, predictions)

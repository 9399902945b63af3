"""What differs per Keras backend, one mirrored file each (as keras/src/backend/<name>/):
threads, gradients on a fixed batch, and a compiled inference function."""

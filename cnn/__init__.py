"""A small convolutional network library in NumPy: kernels, layers, training, data, explanation."""

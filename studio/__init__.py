"""Studio: a desktop studio for training, exporting and curating image generators."""

__version__ = "0.1.0"

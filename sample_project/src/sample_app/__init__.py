"""sample-app: an image classifier and a tabular classifier, shipped as ORT-format models."""

__version__ = "1.0.0"

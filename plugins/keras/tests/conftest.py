"""Keras reads KERAS_BACKEND once, at its first import: choose the backend before any test runs."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

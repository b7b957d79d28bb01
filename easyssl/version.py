"""easyssl's version: a leaf module (no imports), so that any layer may read it and the build reads it statically."""

__version__ = "0.1.0"

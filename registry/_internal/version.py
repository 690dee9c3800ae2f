"""The package version, in a leaf module: code below the package root reads it here, never from ``registry``."""

__version__ = "0.2.0"

"""The package version (one place; `paddlefunnel.__version__` and export descriptions read it)."""

__version__ = "0.1.0"

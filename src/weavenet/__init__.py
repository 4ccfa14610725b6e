"""weavenet: Weave Net rebuilt in Python, wire-compatible with Weave Net 2.8."""

__version__ = "0.1.0"
__all__ = ["__version__"]

"""cortex-change: ITIL 4 change management."""

__version__ = "0.1.0"

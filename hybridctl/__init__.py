"""hybridctl: build and guard a private multi-cloud L3 overlay."""

__version__ = "0.1.0"

"""lipdub: style-preserving lip sync for video dubbing."""

__version__ = "0.1.0"

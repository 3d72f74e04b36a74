"""imgpipe: a command-line client for the image-compression pipeline (submit, watch, inspect, download)."""

__version__ = "0.1.0"

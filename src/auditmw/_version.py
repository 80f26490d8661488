"""The version of auditmw, in one place (read by the package, the CLI and the formats)."""

__version__ = "0.1.0"

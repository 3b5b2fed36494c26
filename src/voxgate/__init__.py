"""voxgate: a self-hostable, wire-compatible Voice Agent API server."""

__version__ = "0.1.0"

"""Wire models of the Voice Agent API: agent and session configuration, events, error codes.

This package imports nothing else of voxgate.
"""

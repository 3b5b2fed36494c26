"""Session history, recordings and webhooks (HOSTED.md §6, docs/history.md).

Outside the conversation engine: the connection layer feeds a :class:`~voxgate.history.recorder.
SessionRecorder` with what it sees (client events, server events, the close), and the recorder keeps the
session's record, its artifacts (audio, timeline, metadata) and announces it to webhooks through the
outbox. :mod:`voxgate.history.service` holds the app-wide parts (leases, sweeps, the webhook worker).
"""

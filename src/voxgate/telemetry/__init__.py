"""The server's live measures (Prometheus, ``GET /metrics`` and ``GET /metrics/turns``), one concern a module.

- :mod:`~voxgate.telemetry.metrics`: every metric's definition (and the scrape-time collectors);
- :mod:`~voxgate.telemetry.session_meter`: one connection's session, metered from the events it sends and
  from what the session reports about itself (the Prometheus-backed
  :class:`~voxgate.conversation.session_telemetry.SessionTelemetry`);
- :mod:`~voxgate.telemetry.turn_stages` and :mod:`~voxgate.telemetry.recent_turns`: a turn's stages and
  the recent turns of ``/metrics/turns``;
- :mod:`~voxgate.telemetry.multiprocess` and :mod:`~voxgate.telemetry.turn_files`: several worker processes
  (``PROMETHEUS_MULTIPROC_DIR``) sharing their metrics and recent turns;
- :mod:`~voxgate.telemetry.runtime`, :mod:`~voxgate.telemetry.gc_pauses`,
  :mod:`~voxgate.telemetry.process_feeds`: the event loop, tasks, threads, garbage collections and
  inference queues;
- :mod:`~voxgate.telemetry.native_heap`: glibc's C heap (no prometheus-client: the memory care uses it);
- :mod:`~voxgate.telemetry.exposition`: the text of ``GET /metrics``.

This package's ``__init__`` imports nothing: ``voxgate serve``'s supervisor must not import
prometheus-client before it sets ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client reads it once, on import).
"""

"""Telephony: the Twilio Media Streams bridge (TWILIO.md).

- :mod:`~voxgate.telephony.media_streams`: Twilio's WebSocket messages, parsed and built.
- :mod:`~voxgate.telephony.bridge`: one phone call adapted to one conversation ``Session``.
- :mod:`~voxgate.telephony.playback_marks`: ``mark`` bookkeeping (what the caller has heard).
- :mod:`~voxgate.telephony.keypad`: DTMF digits collected into one entry for the agent.
- :mod:`~voxgate.telephony.phone_agent`: a stored agent's configuration made fit for the phone (μ-law).
- :mod:`~voxgate.telephony.webhook`: TwiML answers and ``X-Twilio-Signature`` checks.
- :mod:`~voxgate.telephony.outbound`: placing calls through Twilio's REST API.
"""

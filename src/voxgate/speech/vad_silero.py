"""Silero VAD v6 run directly with onnxruntime (no torch).

The default model file is the one faster-whisper ships (``faster_whisper/assets/silero_vad_v6.onnx``,
the export with ``h``/``c`` LSTM state inputs); the ``silero_vad.onnx`` of the silero-vad / pipecat
packages (one ``state`` input plus ``sr``) works too. One ``InferenceSession`` is shared by every session;
each conversation gets a ``SileroVoiceActivityStream`` holding its LSTM state and the 64-sample
context carried from the previous frame. A frame costs ~0.1–0.2 ms on one thread, so streams are
called inline on the event loop (the Protocol allows it) rather than through an executor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from voxgate.config import Settings
from voxgate.speech.base import INPUT_SAMPLE_RATE, FloatAudio
from voxgate.speech.models import resolve_model

FRAME_SAMPLES = 512
"""32 ms at 16 kHz: the frame size Silero is trained on."""
CONTEXT_SAMPLES = 64
_HC_SHAPE = (1, 1, 128)
_STATE_SHAPE = (2, 1, 128)
_SAMPLE_RATE_INPUT = np.array(INPUT_SAMPLE_RATE, dtype=np.int64)


class SileroVoiceActivityStream:
    """Per-session VAD state: feed consecutive 512-sample frames of 16 kHz float audio."""

    frame_samples: int = FRAME_SAMPLES

    def __init__(self, session: ort.InferenceSession, *, single_state: bool) -> None:
        self._session = session
        self._single_state = single_state
        self._input = np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=np.float32)
        self.reset()

    def speech_probability(self, frame: FloatAudio) -> float:
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"Silero VAD needs frames of exactly {FRAME_SAMPLES} samples, got {frame.shape}")
        # The model input is the previous frame's last 64 samples followed by the new frame.
        self._input[0, :CONTEXT_SAMPLES] = self._input[0, -CONTEXT_SAMPLES:]
        self._input[0, CONTEXT_SAMPLES:] = frame
        if self._single_state:
            probability, self._state = self._session.run(
                None, {"input": self._input, "state": self._state, "sr": _SAMPLE_RATE_INPUT}
            )
        else:
            probability, self._h, self._c = self._session.run(
                None, {"input": self._input, "h": self._h, "c": self._c}
            )
        return float(np.asarray(probability).reshape(-1)[0])

    def reset(self) -> None:
        self._h = np.zeros(_HC_SHAPE, dtype=np.float32)
        self._c = np.zeros(_HC_SHAPE, dtype=np.float32)
        self._state = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._input.fill(0.0)


class SileroVAD:
    """Shared Silero model: ``SileroVAD(settings)``, or ``SileroVAD(model_path=..., threads=1)``.

    Without ``model_path`` the file comes from ``resolve_model("silero-vad", settings)`` (faster-whisper's
    bundled v6 export, sha256-checked). Loading is synchronous and safe to run in a worker thread.
    """

    sample_rate = INPUT_SAMPLE_RATE
    frame_samples = FRAME_SAMPLES

    def __init__(
        self, settings: Settings | None = None, *, model_path: Path | None = None, threads: int | None = None
    ) -> None:
        settings = settings or Settings()
        self.model_path = model_path or resolve_model("silero-vad", settings)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or settings.vad_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        names = {i.name for i in self._session.get_inputs()}
        if names not in ({"input", "h", "c"}, {"input", "state", "sr"}):
            raise ValueError(
                f"{self.model_path} is not a Silero VAD ONNX export (inputs {sorted(names)}); "
                "use faster_whisper/assets/silero_vad_v6.onnx"
            )
        self._single_state = "state" in names

    def create_stream(self) -> SileroVoiceActivityStream:
        return SileroVoiceActivityStream(self._session, single_state=self._single_state)

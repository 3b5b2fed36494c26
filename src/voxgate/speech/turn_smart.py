"""End-of-turn detection with the smart-turn v3.2 ONNX model (pipecat-ai's data file, pipecat not imported).

Input: the last 8 s of the utterance at 16 kHz, left-padded with zeros, as normalised Whisper log-mel
features ``(1, 80, 800)``. Output: probability that the user's turn is complete. About 50 ms per call
on one thread; runs in its own ``InferenceExecutor``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from voxgate.config import Settings
from voxgate.speech.audio_features import fixed_window, log_mel_spectrogram
from voxgate.speech.base import FloatAudio
from voxgate.speech.executor import InferenceExecutor
from voxgate.speech.models import resolve_model

WINDOW_SECONDS = 8.0


class SmartTurnDetector:
    """``SmartTurnDetector(settings)`` or ``SmartTurnDetector(model_path=..., threads=1)``.

    Without ``model_path`` the file comes from ``resolve_model("smart-turn-v3.2", settings)``.
    """

    def __init__(
        self, settings: Settings | None = None, *, model_path: Path | None = None, threads: int = 1
    ) -> None:
        self.model_path = model_path or resolve_model("smart-turn-v3.2", settings or Settings())
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input_name = self._session.get_inputs()[0].name
        self.executor = InferenceExecutor("smart-turn", threads=1)

    def predict(self, audio: FloatAudio) -> float:
        """Synchronous inference (runs in the caller's thread)."""
        if audio.ndim != 1:
            raise ValueError(f"expected mono 16 kHz audio, got shape {audio.shape}")
        window = fixed_window(np.asarray(audio, dtype=np.float32), WINDOW_SECONDS)
        features = log_mel_spectrogram(window, normalize=True)[None, :, :]
        (output,) = self._session.run(None, {self._input_name: features})
        return float(np.clip(np.asarray(output).reshape(-1)[0], 0.0, 1.0))

    async def completion_probability(self, audio: FloatAudio) -> float:
        if len(audio) == 0:
            return 0.0
        return await self.executor.run(self.predict, audio)

    def close(self) -> None:
        self.executor.shutdown()

"""Per-session prompt caches for one shared llama.cpp model: the only module that touches llama.cpp's KV
cache directly.

llama.cpp keeps the KV cache of its last evaluation, and llama-cpp-python reuses the longest token
prefix it has in common with the next prompt, so a session's system prompt, tools and history are not
prefilled again on its next turn. One model serves every session, though: when another session uses it,
the KV cells of the session switched away from are saved (``llama_state_seq_get_data``, about 12 KiB per
token) and restored when that session speaks again, if that gives a longer cached prefix than what is
loaded (least recently used first out, ``max_sessions``). :meth:`LlamaPromptCache.forget` drops a
session's saved cells when it ends.

llama-cpp-python has no public API for this, so this module relies on three of its private attributes
(``Llama._ctx``, ``Llama._requires_eval``, ``Llama.input_ids``/``n_tokens``; :meth:`next_token_logits` reads
the last logits of the context); :attr:`supported` is
false, and caching across sessions is off, when a version lacks them. Every method but :meth:`forget` and
:meth:`clear` runs on the model's inference thread.
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llama_cpp import Llama


@dataclass(slots=True)
class _SavedCells:
    tokens: list[int]
    data: bytes


class LlamaPromptCache:
    def __init__(self, llama: Llama, *, max_sessions: int = 8) -> None:
        self._llama = llama
        self.max_sessions = max_sessions
        self.supported = hasattr(llama, "_ctx") and hasattr(llama, "_requires_eval")
        self._saved: OrderedDict[str, _SavedCells] = OrderedDict()
        self._lock = threading.Lock()  # forget() and clear() run on the event loop thread
        self._loaded: str | None = None

    # --- any thread ---------------------------------------------------------------------------
    def forget(self, session_key: str) -> None:
        """Drop an ended session's saved cells."""
        with self._lock:
            self._saved.pop(session_key, None)

    def clear(self) -> None:
        with self._lock:
            self._saved.clear()

    @property
    def saved_sessions(self) -> int:
        with self._lock:
            return len(self._saved)

    # --- inference thread -------------------------------------------------------------------------
    def loaded_tokens(self) -> list[int]:
        llama = self._llama
        return llama.input_ids[: llama.n_tokens].tolist()

    def reused_prefix(self, tokens: Sequence[int]) -> int:
        """How many leading tokens of ``tokens`` are already in the KV cache."""
        return common_prefix(self.loaded_tokens(), tokens)

    def switch(self, session_key: str | None, tokens: Sequence[int]) -> None:
        """Make ``session_key`` the session using the model, for a prompt of ``tokens``: save the cells of
        the session that used it last; restore ``session_key``'s if that gives a longer cached prefix."""
        if not self.supported or session_key == self._loaded:
            return
        llama = self._llama
        if self._loaded is not None and llama.n_tokens > 0:
            cells = _SavedCells(tokens=self.loaded_tokens(), data=self._save())
            with self._lock:
                self._saved[self._loaded] = cells
                self._saved.move_to_end(self._loaded)
                while len(self._saved) > self.max_sessions:
                    self._saved.popitem(last=False)
        self._loaded = session_key
        with self._lock:
            saved = self._saved.get(session_key) if session_key is not None else None
        if saved is not None and common_prefix(saved.tokens, tokens) > self.reused_prefix(tokens):
            self._restore(saved)

    def prefill(self, tokens: Sequence[int]) -> None:
        """Evaluate ``tokens`` into the KV cache, reusing the prefix already there (no sampling)."""
        llama = self._llama
        reused = self.reused_prefix(tokens)
        if reused == len(tokens):
            return
        llama.n_tokens = reused
        llama._ctx.kv_cache_seq_rm(-1, reused, -1)
        llama.eval(list(tokens[reused:]))
        llama._requires_eval = True

    def next_token_logits(self, tokens: Sequence[int]) -> Any:
        """Evaluate ``tokens`` (reusing the cached prefix, at least the last token again) and return a copy
        of the logits for the token that would follow them (a numpy array of ``n_vocab`` floats)."""
        import llama_cpp
        import numpy as np

        llama = self._llama
        reused = min(self.reused_prefix(tokens), len(tokens) - 1)
        llama.n_tokens = reused
        llama._ctx.kv_cache_seq_rm(-1, reused, -1)
        llama.eval(list(tokens[reused:]))
        llama._requires_eval = True  # a later completion must not sample from these logits by accident
        pointer = llama_cpp.llama_get_logits_ith(llama._ctx.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(llama.n_vocab(),)).copy()

    def _save(self) -> bytes:
        import llama_cpp

        ctx = self._llama._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        return bytes(buffer[:written])

    def _restore(self, saved: _SavedCells) -> None:
        import llama_cpp

        llama = self._llama
        llama._ctx.kv_cache_seq_rm(-1, 0, -1)
        buffer = (ctypes.c_uint8 * len(saved.data)).from_buffer_copy(saved.data)
        if llama_cpp.llama_state_seq_set_data(llama._ctx.ctx, buffer, len(saved.data), 0) == 0:
            llama.n_tokens = 0  # restore failed: fall back to a full prefill
            return
        llama.input_ids[: len(saved.tokens)] = saved.tokens
        llama.n_tokens = len(saved.tokens)
        llama._requires_eval = True


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    count = 0
    for left, right in zip(a, b, strict=False):
        if left != right:
            break
        count += 1
    return count

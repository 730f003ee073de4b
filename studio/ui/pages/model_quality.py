"""The Models page's quality score: whether a model can be scored and its newest score, read off the GUI
thread, and the rich text the page shows."""

from __future__ import annotations

import html
from dataclasses import dataclass

from studio.engine.embedding.queries import latest_score_of, no_encoder_hint
from studio.engine.embedding.scoring import describe
from studio.store.database import Store
from studio.store.embeddings import EmbeddingRepository, ScoreRecord

STALE_COLOUR = "#b9770e"  # the Models page's colour for out-of-date figures
SCORE_TIP = (
    "Sample the model and measure its quality in its dataset's encoder space: Frechet distance, precision "
    "(fidelity) and recall (diversity)"
)


@dataclass(frozen=True)
class ModelQuality:
    """Whether a model can be scored (its dataset has an encoder; else `hint` says why not) and its newest score."""

    model: str
    dataset: str | None
    scorable: bool
    hint: str
    score: ScoreRecord | None


def read_quality(store: Store, model: str) -> ModelQuality:
    """A model's scoring state and newest score (database reads: call it off the GUI thread)."""
    repository = EmbeddingRepository(store)
    found = repository.dataset_of_model(model)
    if found is None:
        hint = f"'{model}' has no dataset (imported, or its dataset was deleted): a score needs its dataset's encoder"
        return ModelQuality(model, None, False, hint, None)
    scorable = repository.current_encoder(found[0]) is not None
    score = latest_score_of(store, model)
    return ModelQuality(model, found[1], scorable, "" if scorable else no_encoder_hint(found[1]), score)


def quality_text(quality: ModelQuality, steps: int) -> str:
    """The newest score as rich text: its one-line reading, where and when it was measured, whether it is stale."""
    record = quality.score
    if record is None:
        what = (
            "not scored yet: use <b>Score</b>"
            if quality.scorable
            else html.escape(quality.hint or "cannot be scored", quote=False)
        )
        return f"<b>Quality</b>: <span style='color: #7f8c8d'>{what}</span>"
    when = record.created_at.strftime("%Y-%m-%d %H:%M")
    stale = (
        f" <span style='color: {STALE_COLOUR}'>The model has trained {steps - record.steps:,} more steps since: "
        "score again.</span>"
        if steps > record.steps
        else ""
    )
    dataset = html.escape(quality.dataset or "-", quote=False)
    return (
        f"<b>Quality</b>: {html.escape(describe(record), quote=False)}<br>"
        f"<span style='color: #7f8c8d'>In the encoder space of '{dataset}', at step {record.steps:,}, "
        f"scored {when} UTC.</span>{stale}"
    )

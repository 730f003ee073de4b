"""A model's quality in its dataset's encoder space: Frechet distance to the dataset's embeddings and
improved precision and recall (Kynkaanniemi et al., 2019), from samples drawn with fixed seeds.

Lower Frechet distance is better; precision is fidelity (samples that look like the data), recall is
diversity (the data the samples cover): a collapsed model keeps its precision and loses its recall.
"""

from __future__ import annotations

import functools
from collections.abc import Generator
from typing import Any

import numpy as np

from studio.engine.embedding.analysis import frechet_distance, precision_recall
from studio.engine.embedding.queries import dataset_encoder, embedder_for, vector_cache
from studio.engine.generation import open_model
from studio.engine.jobs import CancelToken, Finished, Progress
from studio.engine.numerics import iterate_batches
from studio.engine.stepping import batch_steps, fit_memory, stepped
from studio.errors import StudioError
from studio.limits import SCORE_SAMPLES
from studio.store.database import Store
from studio.store.embeddings import EmbeddingRepository, ScoreRecord

DEFAULT_SAMPLES = 256
SCORE_SEED = 1_000_000  # the seeds scores sample from: away from the seeds users usually start at
NEIGHBOURS = 3  # k of the k-NN balls (the paper's default)


def score_model(
    store: Store,
    model: str,
    samples: int = DEFAULT_SAMPLES,
    backend: str = "torch",
    device: str = "auto",
    cancel: CancelToken | None = None,
) -> Generator[Progress | Finished, None, None]:
    """Sample `samples` images, embed them and score them against the dataset; Finished(ScoreRecord)."""
    if not SCORE_SAMPLES.low <= samples <= SCORE_SAMPLES.high:
        raise StudioError(f"--samples must be between {SCORE_SAMPLES.low} and {SCORE_SAMPLES.high}")
    cancel = cancel or CancelToken()
    repository = EmbeddingRepository(store)
    found = repository.dataset_of_model(model)
    if found is None:
        raise StudioError(
            f"model '{model}' has no dataset (imported, or its dataset was deleted): a score needs the encoder "
            "of the dataset a model was trained on"
        )
    encoder = dataset_encoder(store, found[1])
    real = vector_cache.get(store, encoder, "dataset")
    with open_model(store, model, backend, "auto", device) as opened:
        options = opened.pipeline.sampling_options({})
        seeds = list(range(SCORE_SEED, SCORE_SEED + samples))
        fit_memory(opened.pipeline, opened.backend, opened.provider)
        parts = iterate_batches(samples, max(1, min(64, opened.pipeline.chunk)))
        images: list[np.ndarray] = []
        done = 0
        yield Progress("scoring", 0, samples, f"{model}: sampling {samples} images")
        for index, part in enumerate(parts):
            cancel.check()
            report = batch_steps("scoring", done, len(seeds[part]), samples, index + 1, len(parts))
            work = functools.partial(opened.pipeline.sample, seeds[part], options)
            images.append((yield from stepped(opened.pipeline, cancel, work, report)))
            done += len(images[-1])
        weights_hash, steps = opened.weights_hash, opened.steps_trained
        model_id = opened.model_id
    generated = embedder_for(store, encoder, found[1]).embed(np.concatenate(images))
    # Precision and recall compare sets of equal size: a seeded draw of the dataset, as large as the samples.
    pick = np.random.default_rng(0).choice(len(real.matrix), min(samples, len(real.matrix)), replace=False)
    precision, recall = precision_recall(real.matrix[np.sort(pick)], generated, NEIGHBOURS)
    record = repository.add_score(
        {
            "model_id": model_id,
            "encoder_id": encoder.id,
            "weights_hash": weights_hash,
            "steps": steps,
            "samples": samples,
            "frechet": frechet_distance(real.matrix, generated),
            "precision": precision,
            "recall": recall,
        }
    )
    yield Finished(record)


def can_score(store: Store, model: str) -> bool:
    """Whether the model's dataset has an encoder (so a score can be computed now)."""
    repository = EmbeddingRepository(store)
    found = repository.dataset_of_model(model)
    return found is not None and repository.current_encoder(found[0]) is not None


def latest_score(store: Store, model_id: int) -> ScoreRecord | None:
    """The model's newest score, or None."""
    scores = EmbeddingRepository(store).scores(model_id)
    return scores[0] if scores else None


def score_summary(record: ScoreRecord) -> dict[str, Any]:
    """The JSON form with a one-line reading."""
    return {**record.as_dict(), "reading": describe(record)}


def describe(record: ScoreRecord) -> str:
    """A one-line reading of a score."""
    return (
        f"Frechet {record.frechet:.4f} (lower is better), precision {record.precision:.2f} (fidelity), "
        f"recall {record.recall:.2f} (diversity) from {record.samples} samples"
    )

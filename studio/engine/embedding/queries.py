"""What the encoder lets a curator ask: more like this, near-duplicates, the nearest training image
(memorisation), the embeddings as a file, and a 2-D map (torch-free: numpy and onnxruntime).

Gallery items get their vectors in the background (`embed_pending`); a query first embeds whatever
of its dataset is still missing, so its answer never leaves an item out.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.engine.datasets.storage import list_datasets, write_json_atomic
from studio.engine.embedding.analysis import duplicate_groups, nearest, pca_2d
from studio.engine.embedding.preprocess import fit_channels, read_image, resize
from studio.engine.embedding.runtime import STATE_FILE, Embedder, dataset_fingerprint
from studio.engine.jobs import CancelToken, Finished, Progress, run_job
from studio.errors import NotFoundError, StudioError
from studio.limits import NEIGHBOURS
from studio.store.database import Store
from studio.store.embeddings import EmbeddingRepository, EncoderRecord, ScoreRecord, VectorRow, Vectors
from studio.store.gallery import GalleryFilter, GalleryRepository

EMBED_BATCH = 128  # gallery images read and embedded per round (and per database write)


def encoder_folder(store: Store, dataset: str) -> Path:
    """The folder of a dataset's encoders (and of its stopped training)."""
    return store.home.encoders / dataset


def stopped_training(store: Store, dataset: str) -> bool:
    """Whether the dataset's encoder training was stopped and can be resumed (`--resume`)."""
    return (encoder_folder(store, dataset) / STATE_FILE).is_file()


def latest_score_of(store: Store, model: str) -> ScoreRecord | None:
    """The newest quality score of a model by name, or None."""
    return EmbeddingRepository(store).latest_score_of(model)


def encoder_summary(encoder: EncoderRecord) -> dict[str, Any]:
    """What the CLI and the app show of an encoder."""
    return {
        "encoder_id": encoder.id,
        "weights_hash": encoder.weights_hash,
        "dims": encoder.dims,
        "input_size": encoder.input_size,
        "steps": encoder.steps,
        "probe_accuracy": encoder.metrics.get("probe_accuracy"),
        "probe_chance": encoder.metrics.get("probe_chance"),
        "duplicate_threshold": round(encoder.duplicate_threshold, 6),
        "memorised_threshold": round(encoder.memorised_threshold, 6),
        "created_at": encoder.created_at.isoformat(timespec="seconds"),
    }


def no_encoder_hint(dataset: str) -> str:
    """The one line shown wherever an encoder is needed and the dataset has none."""
    return f"dataset '{dataset}' has no encoder yet: train one with `studio embed train {dataset}` (about 3 minutes)"


def dataset_encoder(store: Store, dataset: str) -> EncoderRecord:
    """The dataset's current encoder, or a StudioError with the hint to train one."""
    repository = EmbeddingRepository(store)
    encoder = repository.current_encoder(repository.dataset_id(dataset))
    if encoder is None:
        raise StudioError(no_encoder_hint(dataset))
    return encoder


def dataset_has_encoder(store: Store, dataset: str) -> bool:
    """Whether the dataset has a current encoder."""
    repository = EmbeddingRepository(store)
    return repository.current_encoder(repository.dataset_id(dataset)) is not None


@dataclass(frozen=True)
class ItemEncoder:
    """A gallery item's encoder: the one of the dataset its model was trained on."""

    item_id: int
    dataset: str
    encoder: EncoderRecord


def item_encoder(store: Store, item_id: int) -> ItemEncoder:
    """The encoder that covers a gallery item, or a StudioError that says why there is none."""
    entry = GalleryRepository(store).get(item_id)
    if entry.origin is not None:
        tool = str(entry.origin.get("tool") or "another tool")
        raise StudioError(
            f"item {item_id} was imported (made by {tool}): similarity needs the encoder of the dataset a "
            "Studio model was trained on"
        )
    found = EmbeddingRepository(store).dataset_of_model(entry.model)
    if found is None:
        raise StudioError(
            f"item {item_id} comes from model '{entry.model}', which has no dataset (imported or deleted): "
            "similarity needs the encoder of the dataset a model was trained on"
        )
    return ItemEncoder(item_id, found[1], dataset_encoder(store, found[1]))


_embedders: dict[tuple[str, int], Embedder] = {}
_embedders_lock = threading.Lock()


def embedder_for(store: Store, encoder: EncoderRecord, dataset: str) -> Embedder:
    """An open ONNX session of the encoder (kept per data home and encoder)."""
    key = (str(store.home.root), encoder.id)
    with _embedders_lock:
        if key not in _embedders:
            fingerprint = dataset_fingerprint(EmbeddingRepository(store).dataset(dataset).content_hashes)
            _embedders[key] = Embedder(store.home.absolute(encoder.folder), fingerprint)
        return _embedders[key]


class _Cache:
    """Vectors read from the store, kept per (home, encoder, kind) and extended by embedding id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._vectors: dict[tuple[str, int, str], Vectors] = {}

    def get(self, store: Store, encoder: EncoderRecord, kind: str) -> Vectors:
        """The encoder's vectors of `kind`, brought up to date with the store."""
        key = (str(store.home.root), encoder.id, kind)
        with self._lock:
            held = self._vectors.get(key, Vectors.empty(encoder.dims))
            after = int(held.rows[-1]) if len(held.rows) else 0
            repository = EmbeddingRepository(store)
            fresh = repository.vectors(encoder, kind, after)
            if len(held.rows) + len(fresh.rows) != repository.vector_count(encoder, kind):
                # Rows went (items purged, `gallery check --repair`) and SQLite may hand their ids out
                # again, which an extension by id would miss: read the whole set afresh.
                held, fresh = Vectors.empty(encoder.dims), repository.vectors(encoder, kind)
            if len(fresh.rows):
                held = Vectors(
                    np.concatenate([held.rows, fresh.rows]),
                    np.concatenate([held.owners, fresh.owners]),
                    np.concatenate([held.matrix, fresh.matrix]),
                )
            self._vectors[key] = held
            return held


vector_cache = _Cache()


def embed_pending(
    store: Store, encoder: EncoderRecord, dataset: str, cancel: CancelToken | None = None, limit: int | None = None
) -> Generator[Progress | Finished, None, None]:
    """Embed the gallery items of the encoder's dataset that have no vector yet; Finished(count)."""
    cancel = cancel or CancelToken()
    repository = EmbeddingRepository(store)
    total = repository.missing_count(encoder)
    if limit is not None:
        total = min(total, limit)
    done, after = 0, 0
    if total:
        yield Progress("embedding", 0, total, f"embedding {total} gallery item(s)")
    embedder = embedder_for(store, encoder, dataset) if total else None
    while done < total and embedder is not None:
        cancel.check()
        batch = repository.missing_gallery_items(encoder, min(EMBED_BATCH, total - done), after)
        if not batch:
            break
        after = batch[-1][0]  # unreadable files stay without a vector: the next round starts past them
        readable: list[tuple[int, np.ndarray]] = []
        for item_id, path in batch:
            try:
                readable.append((item_id, read_image(store.home.absolute(path))))
            except (StudioError, ValueError):
                continue  # a missing or unreadable file: `gallery check` reports it; nothing to embed
        rows: list[VectorRow] = []
        if readable:
            vectors = embedder.embed(_stack(pixels for _, pixels in readable))
            training = vector_cache.get(store, encoder, "dataset")
            indices, distances = nearest(vectors, training.matrix, 1) if len(training.rows) else (None, None)
            for position, (item_id, _) in enumerate(readable):
                rows.append(
                    VectorRow(
                        vectors[position],
                        gallery_item_id=item_id,
                        nearest_item_id=None if indices is None else int(training.owners[indices[position, 0]]),
                        nearest_distance=None if distances is None else float(distances[position, 0]),
                    )
                )
        repository.put(encoder.id, rows)
        done += len(batch)
        yield Progress("embedding", done, total, f"{done}/{total} gallery items embedded")
    yield Finished(done)


def _stack(images: Any) -> np.ndarray:
    """Images of possibly different sizes as one uint8 batch at the largest size (the encoder resizes)."""
    listed = list(images)
    side = max(image.shape[0] for image in listed)
    channels = max(image.shape[2] for image in listed)
    return np.concatenate([resize(fit_channels(image[None], channels), side) for image in listed])


def _gallery_vectors(store: Store, found: ItemEncoder) -> Vectors:
    run_job(embed_pending(store, found.encoder, found.dataset))
    return vector_cache.get(store, found.encoder, "gallery")


def _alive(store: Store, ids: Sequence[int]) -> set[int]:
    return {entry.id for entry in GalleryRepository(store).entries(ids) if not entry.deleted}


def similar(store: Store, item_id: int, k: int = 12) -> list[dict[str, Any]]:
    """The k gallery items (of the same dataset's models) nearest to an item, nearest first."""
    if not NEIGHBOURS.low <= k <= NEIGHBOURS.high:
        raise StudioError(f"--k must be between {NEIGHBOURS.low} and {NEIGHBOURS.high}")
    found = item_encoder(store, item_id)
    vectors = _gallery_vectors(store, found)
    where = np.nonzero(vectors.owners == item_id)[0]
    if not len(where):
        raise StudioError(f"item {item_id} has no embedding: its file is missing (see `studio gallery check`)")
    query = vectors.matrix[where[0] : where[0] + 1]
    # Ask for extra neighbours: deleted items and the item itself are dropped after the search.
    indices, distances = nearest(query, vectors.matrix, min(len(vectors.rows), 2 * k + 16))
    candidates = [int(vectors.owners[i]) for i in indices[0]]
    alive = _alive(store, candidates)
    picked = [
        {"id": owner, "distance": round(float(distance), 6)}
        for owner, distance in zip(candidates, distances[0], strict=True)
        if owner != item_id and owner in alive
    ]
    return picked[:k]


@dataclass(frozen=True)
class DuplicateGroup:
    """Near-identical items; `keep` is the one "keep the best" keeps (best rated, then picked, then oldest)."""

    ids: list[int]
    keep: int
    distance: float  # the largest distance between an item and the kept one

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "ids": self.ids,
            "keep": self.keep,
            "reject": [i for i in self.ids if i != self.keep],
            "max_distance": round(self.distance, 6),
        }


@dataclass(frozen=True)
class DuplicateSearch:
    """The groups found, and the selected items that could not be compared (with the first one's reason)."""

    groups: list[DuplicateGroup]
    left_out: int = 0
    left_out_reason: str = ""


def duplicates(
    store: Store, filters: GalleryFilter | None = None, threshold: float | None = None
) -> list[DuplicateGroup]:
    """Groups of near-identical items among those the filters select, per dataset encoder.

    `threshold` is a cosine distance; by default each encoder's own duplicate rule.
    """
    return search_duplicates(store, filters, threshold).groups


def search_duplicates(
    store: Store, filters: GalleryFilter | None = None, threshold: float | None = None
) -> DuplicateSearch:
    """`duplicates`, and how many selected items were left out: imported images, items of a model without a
    dataset, items of a dataset without an encoder (refused with the hint only when no item can be compared)."""
    if threshold is not None and not 0.0 <= threshold <= 2.0:
        raise StudioError("--threshold must be a cosine distance between 0 and 2")
    gallery = GalleryRepository(store)
    selected = gallery.ids(filters or GalleryFilter())
    entries = {entry.id: entry for entry in gallery.entries(selected)}
    reasons: list[str] = []
    by_model: dict[str, list[int]] = {}
    for entry in entries.values():
        if entry.origin is None:  # an imported image has no Studio model (a namesake may exist here)
            by_model.setdefault(entry.model, []).append(entry.id)
        elif not reasons:
            reasons.append(f"item {entry.id} was imported: Studio compares the images of its own models")
    groups: list[DuplicateGroup] = []
    repository = EmbeddingRepository(store)
    by_dataset: dict[str, list[int]] = {}
    for model, ids in by_model.items():
        found = repository.dataset_of_model(model)
        if found is not None:
            by_dataset.setdefault(found[1], []).extend(ids)
        else:
            reasons.append(f"model '{model}' has no dataset (imported or deleted), so no encoder")
    if not by_dataset:
        raise StudioError("none of these items comes from a model trained on a dataset: nothing to compare")
    with_encoder = {name: ids for name, ids in by_dataset.items() if dataset_has_encoder(store, name)}
    if not with_encoder:
        raise StudioError(no_encoder_hint(sorted(by_dataset)[0]))
    reasons += [no_encoder_hint(name) for name in sorted(set(by_dataset) - set(with_encoder))]
    compared = 0
    for dataset, ids in sorted(with_encoder.items()):
        compared += len(ids)
        encoder = dataset_encoder(store, dataset)
        run_job(embed_pending(store, encoder, dataset))
        vectors = vector_cache.get(store, encoder, "gallery")
        position = {int(owner): index for index, owner in enumerate(vectors.owners)}
        present = [i for i in ids if i in position]
        matrix = vectors.matrix[[position[i] for i in present]]
        rule = encoder.duplicate_threshold if threshold is None else threshold
        for group in duplicate_groups(matrix, rule):
            members = [present[index] for index in group]
            keep = min(
                members,
                key=lambda i: (-entries[i].rating, entries[i].flag != "pick", entries[i].created_at, i),
            )
            kept = matrix[group[members.index(keep)]]
            spread = max(float(1.0 - matrix[index] @ kept) for index in group)
            groups.append(DuplicateGroup(sorted(members), keep, max(0.0, spread)))
    left_out = len(entries) - compared
    return DuplicateSearch(groups, left_out, reasons[0] if left_out and reasons else "")


def reject_duplicates(store: Store, groups: Sequence[DuplicateGroup]) -> list[int]:
    """ "Keep the best, reject the rest": flag every item of the groups but the kept one as reject."""
    rejected = sorted({i for group in groups for i in group.ids if i != group.keep})
    if rejected:
        GalleryRepository(store).set_flag(rejected, "reject")
    return rejected


def nearest_training(store: Store, item_id: int) -> dict[str, Any]:
    """A gallery item's nearest training image, the distance, and whether that counts as memorised."""
    found = item_encoder(store, item_id)
    run_job(embed_pending(store, found.encoder, found.dataset))
    repository = EmbeddingRepository(store)
    recorded = repository.nearest_of(found.encoder, item_id)
    if recorded is None or recorded[0] is None or recorded[1] is None:
        raise StudioError(f"item {item_id} has no embedding: its file is missing (see `studio gallery check`)")
    position, source, label = repository.dataset_items([recorded[0]])[recorded[0]]
    distance = float(recorded[1])
    return {
        "id": item_id,
        "dataset": found.dataset,
        "position": position,
        "source": source,
        "label": label,
        "distance": round(distance, 6),
        "memorised": distance <= found.encoder.memorised_threshold,
        "memorised_threshold": round(found.encoder.memorised_threshold, 6),
    }


def export_embeddings(store: Store, dataset: str | None, model: str | None, destination: Path) -> dict[str, Any]:
    """Write a dataset's (or a model's gallery items') embeddings to FILE.npy and FILE.json beside it."""
    if destination.suffix != ".npy":
        raise StudioError("--to must name a .npy file")
    destination = destination.expanduser().resolve()
    if destination.is_relative_to(store.home.root):
        raise StudioError("--to must be outside the data home: Studio keeps its own files there")
    repository = EmbeddingRepository(store)
    if model is not None:
        found = repository.dataset_of_model(model)
        if found is None:
            raise StudioError(
                f"model '{model}' has no dataset (imported or its dataset was deleted): no encoder covers it"
            )
        dataset = found[1]
    if dataset is None:
        raise StudioError("name a dataset or a model")
    encoder = dataset_encoder(store, dataset)
    index: list[dict[str, Any]]
    if model is None:
        vectors = vector_cache.get(store, encoder, "dataset")
        items = repository.dataset_items(int(owner) for owner in vectors.owners)
        index = [
            {"dataset_position": items[int(o)][0], "source": items[int(o)][1], "label": items[int(o)][2]}
            for o in vectors.owners
        ]
        matrix = vectors.matrix
    else:
        run_job(embed_pending(store, encoder, dataset))
        vectors = vector_cache.get(store, encoder, "gallery")
        mine = {entry.id for entry in GalleryRepository(store).entries(vectors.owners.tolist()) if entry.model == model}
        keep = np.array([int(owner) in mine for owner in vectors.owners], bool)
        matrix = vectors.matrix[keep]
        index = [{"gallery_item_id": int(owner)} for owner in vectors.owners[keep]]
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.partial")
    with open(partial, "wb") as handle:
        np.save(handle, np.ascontiguousarray(matrix, np.float32), allow_pickle=False)
    partial.replace(destination)
    index_path = destination.with_suffix(".json")
    write_json_atomic(
        index_path,
        {"encoder": encoder.weights_hash, "dataset": dataset, "model": model, "dims": encoder.dims, "rows": index},
    )
    return {"file": str(destination), "index": str(index_path), "rows": len(index), "dims": encoder.dims}


def map_points(store: Store, dataset: str, gallery: bool = True, limit: int = 20000) -> dict[str, Any]:
    """A 2-D PCA map of the dataset's images and (optionally) its models' gallery items."""
    encoder = dataset_encoder(store, dataset)
    repository = EmbeddingRepository(store)
    real = vector_cache.get(store, encoder, "dataset")
    points: list[dict[str, Any]] = []
    rows = repository.dataset(dataset)
    label_of = {int(i): label for i, label in zip(rows.item_ids, rows.labels, strict=True)}
    position_of = {int(i): p for p, i in enumerate(rows.item_ids)}
    parts = [real.matrix[:limit]]
    for owner in real.owners[:limit]:
        points.append({"kind": "dataset", "position": position_of[int(owner)], "class": label_of[int(owner)]})
    if gallery:
        run_job(embed_pending(store, encoder, dataset))
        generated = vector_cache.get(store, encoder, "gallery")
        entries = {e.id: e for e in GalleryRepository(store).entries(generated.owners.tolist()) if not e.deleted}
        keep = np.array([int(owner) in entries for owner in generated.owners], bool)
        parts.append(generated.matrix[keep][:limit])
        for owner in generated.owners[keep][:limit]:
            entry = entries[int(owner)]
            points.append(
                {
                    "kind": "gallery",
                    "id": entry.id,
                    "model": entry.model,
                    "class": entry.class_name,
                    "rating": entry.rating,
                    "flag": entry.flag,
                }
            )
    coordinates = pca_2d(np.concatenate(parts)) if points else np.zeros((0, 2), np.float32)
    for point, (x, y) in zip(points, coordinates, strict=True):
        point["x"], point["y"] = round(float(x), 5), round(float(y), 5)
    return {"dataset": dataset, "encoder": encoder.weights_hash, "points": points}


def embed_job(
    store: Store, dataset: str, cancel: CancelToken | None = None
) -> Generator[Progress | Finished, None, None]:
    """Embed every gallery item of the dataset's models still missing a vector (the app's background work)."""
    encoder = dataset_encoder(store, dataset)
    yield from embed_pending(store, encoder, dataset, cancel)


def datasets_with_encoders(store: Store) -> list[str]:
    """Names of the datasets that have an encoder (the background worker's round)."""
    names = []
    repository = EmbeddingRepository(store)
    for summary in list_datasets(store):
        try:
            if repository.current_encoder(repository.dataset_id(summary.name)) is not None:
                names.append(summary.name)
        except NotFoundError:
            continue
    return names


__all__ = [
    "DuplicateGroup",
    "dataset_encoder",
    "datasets_with_encoders",
    "duplicates",
    "embed_job",
    "embed_pending",
    "export_embeddings",
    "item_encoder",
    "map_points",
    "nearest_training",
    "no_encoder_hint",
    "reject_duplicates",
    "similar",
]

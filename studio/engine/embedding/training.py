"""Training a dataset's contrastive encoder (SimCLR): a job like every other, then its ONNX export,
the dataset's embeddings, the distance rules and the linear probe.

The job yields Progress and EncoderProgress events and checks its cancel token every step, so the
CLI and the app drive it the way they drive a model's training. A cancelled run keeps its state
(weights, optimiser, step) in one safetensors file, and `resume` continues it. A finished encoder is
built in a staging folder and renamed into `encoders/<dataset>/<hash>/`; its row is committed after.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_safetensors

from studio import __version__
from studio.engine.checkpoints import join_optimizer, split_optimizer, write_atomic
from studio.engine.datasets.storage import get_dataset, load_images
from studio.engine.embedding.analysis import spacing_thresholds
from studio.engine.embedding.augment import augment
from studio.engine.embedding.network import EmbeddingNetwork, build_networks, nt_xent
from studio.engine.embedding.preprocess import to_input
from studio.engine.embedding.queries import encoder_folder, encoder_summary
from studio.engine.embedding.runtime import (
    CONFIG_FILE,
    ONNX_FILE,
    STATE_FILE,
    WEIGHTS_FILE,
    Embedder,
    dataset_fingerprint,
)
from studio.engine.embedding.settings import ENCODER_KIND, MIN_IMAGES, encoder_settings
from studio.engine.export import export_network, parity_difference
from studio.engine.families.base import NetworkExport
from studio.engine.jobs import CancelToken, Finished, Progress
from studio.engine.training import TrainingProgress, select_device
from studio.errors import CancelledError, StudioError
from studio.files import StagingFolder, hold_lock
from studio.store.database import Store
from studio.store.embeddings import DatasetRows, EmbeddingRepository, EncoderRecord, VectorRow

DEFAULT_MINUTES = 3.0
WARMUP_STEPS = 50
LOCK_NAME = ".training.lock"
PARITY_TOLERANCE = 1e-4
LOSS_NAME = "nt_xent"  # the curve the monitor plots


@dataclass(frozen=True)
class EncoderOptions:
    """What `studio embed train` asks for; neither steps nor minutes means DEFAULT_MINUTES."""

    dataset: str
    steps: int | None = None
    minutes: float | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    resume: bool = False


@dataclass(frozen=True)
class EncoderResult:
    """How the training ended; a completed one names the encoder it registered."""

    dataset: str
    status: str  # "completed" or "cancelled"
    steps: int
    loss: float | None
    seconds: float
    encoder: EncoderRecord | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        found: dict[str, Any] = {
            "dataset": self.dataset,
            "status": self.status,
            "steps": self.steps,
            "loss": None if self.loss is None else round(self.loss, 5),
            "seconds": round(self.seconds, 2),
        }
        if self.encoder is not None:
            found.update(encoder_summary(self.encoder))
        else:
            found["resume"] = f"studio embed train {self.dataset} --resume"
        return found


EncoderJob = Generator[Progress | TrainingProgress | Finished, None, None]


class _Networks:
    """The encoder, its projection head and their optimiser, saved and restored as one state."""

    def __init__(self, channels: int, settings: Mapping[str, Any], device: torch.device, seed: int) -> None:
        # The initial weights come from the seed too: the same options train the same encoder.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.encoder, self.head = build_networks(channels, settings)
        self.encoder.to(device)
        self.head.to(device)
        parameters = [*self.encoder.parameters(), *self.head.parameters()]
        self.optimizer = torch.optim.AdamW(parameters, lr=float(settings["learning_rate"]), weight_decay=1e-4)

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every weight, prefixed by its network."""
        found = {f"encoder.{k}": v.detach().cpu().contiguous() for k, v in self.encoder.state_dict().items()}
        found.update({f"head.{k}": v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()})
        return found

    def save(self, path: Path, state: Mapping[str, Any]) -> None:
        """Weights, optimiser and `state` in one safetensors file (JSON in its metadata), atomically."""
        tensors = self.tensors()
        optimizer_tensors, optimizer_info = split_optimizer("encoder", self.optimizer)
        tensors.update(optimizer_tensors)
        metadata = {"state": json.dumps(dict(state)), "optimizer": json.dumps(optimizer_info)}
        write_atomic(path, save_safetensors(tensors, metadata=metadata))

    def load(self, path: Path, device: torch.device) -> dict[str, Any]:
        """Restore from `save`'s file; its state. A damaged file is a clear error."""
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
            state = json.loads(metadata["state"])
            optimizer_info = json.loads(metadata["optimizer"])
            self.encoder.load_state_dict(_prefixed(tensors, "encoder."))
            self.head.load_state_dict(_prefixed(tensors, "head."))
            self.optimizer.load_state_dict(join_optimizer("encoder", tensors, optimizer_info))
        except (SafetensorError, OSError, ValueError, KeyError, RuntimeError) as error:
            raise StudioError(
                f"the stopped encoder training in {path.parent} cannot be read ({type(error).__name__}): "
                "start again without --resume"
            ) from None
        for state_entry in self.optimizer.state.values():
            for key, value in state_entry.items():
                if isinstance(value, torch.Tensor):
                    state_entry[key] = value.to(device)
        return dict(state)


def _prefixed(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}


def train_encoder(store: Store, options: EncoderOptions, cancel: CancelToken | None = None) -> EncoderJob:
    """Train (or resume) the dataset's encoder; yields events, then Finished(EncoderResult)."""
    cancel = cancel or CancelToken()
    if options.steps is not None and options.steps < 1:
        raise StudioError("--steps must be at least 1")
    if options.minutes is not None and not (0 < options.minutes <= 24 * 60):
        raise StudioError("--minutes must be between 0 and 1440")
    summary = get_dataset(store, options.dataset)
    if summary.count < MIN_IMAGES:
        raise StudioError(
            f"dataset '{options.dataset}' has {summary.count} images: an encoder needs at least {MIN_IMAGES} "
            "(SimCLR learns by telling each image from the others in its batch)"
        )
    repository = EmbeddingRepository(store)
    rows = repository.dataset(options.dataset)
    fingerprint = dataset_fingerprint(rows.content_hashes)
    folder = encoder_folder(store, options.dataset)
    folder.mkdir(parents=True, exist_ok=True)
    lock = hold_lock(folder / LOCK_NAME)
    if lock is None:
        raise StudioError(f"the encoder of '{options.dataset}' is being trained by another process: wait for it")
    try:
        yield from _train(store, options, cancel, summary.channels, summary.size, rows, fingerprint, folder)
    finally:
        lock.close()


def _train(
    store: Store,
    options: EncoderOptions,
    cancel: CancelToken,
    channels: int,
    size: int,
    rows: DatasetRows,
    fingerprint: str,
    folder: Path,
) -> EncoderJob:
    device = select_device(options.device)
    state_path = folder / STATE_FILE
    if options.resume and not state_path.is_file():
        raise StudioError(f"no stopped encoder training of '{options.dataset}' to resume: start one without --resume")
    settings = encoder_settings(options.settings)
    previous: dict[str, Any] = {}
    if options.resume:
        previous = _peek_state(state_path)
        if previous.get("fingerprint") != fingerprint:
            raise StudioError(
                f"the stopped encoder training in {folder.name} belongs to another dataset: "
                "start again without --resume"
            )
        fixed = {name: previous["settings"][name] for name in ("input_size", "width", "projection_dims")}
        asked = {name: settings[name] for name in fixed if name in options.settings}
        if any(asked[name] != fixed[name] for name in asked):
            raise StudioError("input_size, width and projection_dims cannot change when resuming: drop them")
        settings = {**settings, **fixed}
    settings["input_size"] = min(int(settings["input_size"]), size)
    networks = _Networks(channels, settings, device, options.seed)
    step = 0
    if options.resume:
        step = int(networks.load(state_path, device).get("step", 0))
    yield Progress("preparing", 0, 0, f"resizing {len(rows.item_ids)} images to {settings['input_size']} px")
    images = load_images(store, options.dataset)
    data = torch.from_numpy(to_input(np.asarray(images), settings["input_size"], channels)).to(device)
    minutes = options.minutes if options.minutes is not None else (None if options.steps else DEFAULT_MINUTES)
    target = None if options.steps is None else step + options.steps
    batch = min(int(settings["batch_size"]), len(data))
    generator = torch.Generator(device=device)
    generator.manual_seed(options.seed * 1_000_003 + step)
    started = time.monotonic()
    loss_value: float | None = None
    rate = 0.0
    paused_for = 0.0
    last_report, report_step, first_step = started, step, step
    networks.encoder.train()
    networks.head.train()
    try:
        while True:
            elapsed = time.monotonic() - started - paused_for
            if target is not None and step >= target:
                break
            if minutes is not None and elapsed >= minutes * 60:
                break
            waited = time.monotonic()
            cancel.check()
            paused_for += time.monotonic() - waited  # time spent paused is not training time
            progress = max(
                0.0 if target is None else (step - first_step) / max(1, target - first_step),
                0.0 if minutes is None else elapsed / (minutes * 60),
            )
            _set_learning_rate(networks.optimizer, float(settings["learning_rate"]), step - first_step, progress)
            chosen = torch.randperm(len(data), generator=generator, device=device)[:batch]
            originals = data[chosen]
            first = networks.head(networks.encoder(augment(originals, settings, generator)))
            second = networks.head(networks.encoder(augment(originals, settings, generator)))
            loss = nt_xent(first, second, float(settings["temperature"]))
            networks.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            networks.optimizer.step()
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise StudioError(f"encoder training diverged at step {step + 1}: try a lower learning_rate")
            step += 1
            now = time.monotonic()
            if now - last_report >= 0.5 or step == target:
                measured = (step - report_step) * batch / max(now - last_report, 1e-9)
                rate = measured if rate == 0 else 0.7 * rate + 0.3 * measured
                yield TrainingProgress(
                    step,
                    target,
                    {LOSS_NAME: loss_value},
                    rate,
                    _eta(step, target, minutes, rate, batch, now - started - paused_for),
                    now - started - paused_for,
                )
                last_report, report_step = now, step
    except (CancelledError, KeyboardInterrupt) as stop:
        if step > first_step or not state_path.exists():
            networks.save(
                state_path, {"step": step, "settings": settings, "fingerprint": fingerprint, "seed": options.seed}
            )
        if isinstance(stop, KeyboardInterrupt):
            raise
        yield Finished(EncoderResult(options.dataset, "cancelled", step, loss_value, time.monotonic() - started))
        return
    networks.encoder.eval()
    yield Progress("exporting", 0, 0, "exporting the encoder to ONNX")
    encoder = yield from _publish(
        store, options.dataset, rows, fingerprint, networks, data, settings, channels, step, loss_value, folder
    )
    state_path.unlink(missing_ok=True)
    yield Finished(EncoderResult(options.dataset, "completed", step, loss_value, time.monotonic() - started, encoder))


def _peek_state(path: Path) -> dict[str, Any]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(json.loads((handle.metadata() or {})["state"]))
    except (SafetensorError, OSError, ValueError, KeyError) as error:
        raise StudioError(
            f"the stopped encoder training in {path.parent} cannot be read ({type(error).__name__}): "
            "start again without --resume"
        ) from None


def _set_learning_rate(optimizer: torch.optim.Optimizer, peak: float, steps_done: int, progress: float) -> None:
    """Linear warm-up over WARMUP_STEPS, then cosine decay to a tenth over the budget."""
    warm = min(1.0, (steps_done + 1) / WARMUP_STEPS)
    decay = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    for group in optimizer.param_groups:
        group["lr"] = peak * warm * decay


def _eta(step: int, target: int | None, minutes: float | None, rate: float, batch: int, elapsed: float) -> float | None:
    left = []
    if target is not None and rate > 0:
        left.append((target - step) * batch / rate)
    if minutes is not None:
        left.append(max(0.0, minutes * 60 - elapsed))
    return min(left) if left else None


def _publish(
    store: Store,
    dataset: str,
    rows: DatasetRows,
    fingerprint: str,
    networks: _Networks,
    data: torch.Tensor,
    settings: Mapping[str, Any],
    channels: int,
    steps: int,
    loss: float | None,
    folder: Path,
) -> Generator[Progress, None, EncoderRecord]:
    """Export, embed the dataset, measure the rules and the probe, then register the encoder."""
    network = EmbeddingNetwork(networks.encoder).eval()
    network.centre_on(data)
    network = network.cpu()
    weights = {key: value.detach().cpu().contiguous() for key, value in network.state_dict().items()}
    weights_bytes = save_safetensors(weights, metadata={"kind": ENCODER_KIND, "studio": __version__})
    weights_hash = hashlib.sha256(weights_bytes).hexdigest()
    size = int(settings["input_size"])
    dims = networks.encoder.features
    destination = folder / weights_hash[:16]
    if not destination.exists():
        staged = StagingFolder(store.home.staging, "encoder")
        try:
            write_atomic(staged.path / WEIGHTS_FILE, weights_bytes)
            rng = np.random.default_rng(0)
            example = rng.uniform(-1, 1, (2, channels, size, size)).astype(np.float32)
            spec = NetworkExport(
                "encoder",
                network,
                (torch.from_numpy(example),),
                ("images",),
                ("embeddings",),
                {"images": {0: "batch"}},
                [(rng.uniform(-1, 1, (count, channels, size, size)).astype(np.float32),) for count in (1, 5)],
            )
            metadata = {"studio.kind": ENCODER_KIND, "studio.dataset": dataset, "studio.weights_hash": weights_hash}
            export_network(spec, network, staged.path / ONNX_FILE, metadata)
            difference, _ = parity_difference(spec, network, staged.path / ONNX_FILE)
            if difference > PARITY_TOLERANCE:
                raise StudioError(f"the exported encoder differs from torch by {difference:.2e}: not kept")
            config = {
                "kind": ENCODER_KIND,
                "dataset": dataset,
                "fingerprint": fingerprint,
                "input_size": size,
                "channels": channels,
                "dims": dims,
                "settings": dict(settings),
                "steps": steps,
                "weights_hash": weights_hash,
                "studio_version": __version__,
            }
            write_atomic(staged.path / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True).encode())
            staged.publish(destination)
            staged.commit()
        except BaseException:
            staged.discard()
            raise
    yield Progress("embedding", 0, len(rows.item_ids), "embedding the dataset")
    embedder = Embedder(destination, fingerprint)
    images = np.asarray(load_images(store, dataset))
    vectors = embedder.embed(images)
    yield Progress("embedding", len(rows.item_ids), len(rows.item_ids), "measuring the distance rules")
    rules = spacing_thresholds(vectors)
    metrics: dict[str, Any] = {"loss": loss}
    if all(label is not None for label in rows.labels) and len(set(rows.labels)) >= 2:
        yield Progress("probe", 0, 0, "linear probe on the labels")
        accuracy, chance = linear_probe(vectors, [str(label) for label in rows.labels])
        metrics.update(probe_accuracy=round(accuracy, 4), probe_chance=round(chance, 4))
    repository = EmbeddingRepository(store)
    record = repository.add_encoder(
        {
            "dataset_id": rows.id,
            "folder": store.home.relative(destination),
            "weights_hash": weights_hash,
            "input_size": size,
            "channels": channels,
            "dims": dims,
            "steps": steps,
            "settings": dict(settings),
            "metrics": metrics,
            "duplicate_threshold": rules.duplicate,
            "memorised_threshold": rules.memorised,
        }
    )
    repository.put(
        record.id,
        [VectorRow(vector, dataset_item_id=int(item)) for vector, item in zip(vectors, rows.item_ids, strict=True)],
    )
    return record


def linear_probe(vectors: np.ndarray, labels: list[str], seed: int = 0) -> tuple[float, float]:
    """Held-out accuracy (20%) of a multinomial logistic regression on frozen embeddings, and the
    majority class's share (what always guessing it would score)."""
    names = sorted(set(labels))
    targets = torch.tensor([names.index(label) for label in labels])
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(labels)))
    held = max(1, len(labels) // 5)
    test, train = order[:held], order[held:]
    features = torch.from_numpy(np.asarray(vectors, np.float32))
    mean, std = features[train].mean(0), features[train].std(0).clamp_min(1e-6)
    features = (features - mean) / std
    weights = torch.zeros(features.shape[1], len(names), requires_grad=True)
    bias = torch.zeros(len(names), requires_grad=True)
    optimizer = torch.optim.LBFGS([weights, bias], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(features[train] @ weights + bias, targets[train]) + 1e-3 * weights.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        accuracy = float(((features[test] @ weights + bias).argmax(1) == targets[test]).float().mean())
    chance = float(np.bincount(targets[test].numpy()).max() / len(test))
    return accuracy, chance

"""Import a generator made elsewhere as one ONNX file: one noise input, one NCHW float image output.

The file is read once, size first (never past MAX_ONNX_BYTES), and everything is decided from those
bytes: a protobuf that points at external data is refused (the file alone is imported, nothing beside
it is read), then ONNX Runtime runs it on seeded noise to learn the image size and the value range and
to check that the images are finite and that a seed gives the same image in any batch. The same bytes
are written to a staging folder with a manifest in the runtime's format and published whole, and only
then is the model's row added: a refusal leaves no row and no folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from studio import __version__
from studio.engine.datasets.storage import fsync_path, validate_name
from studio.engine.families.declaration import RESOLUTIONS, describe_resolutions
from studio.engine.families.onnx_generator.declaration import DECLARATION, GENERATOR_ROLE
from studio.engine.families.onnx_generator.pipeline import VALUE_RANGES
from studio.engine.importers.sources import card_license, default_name, follow
from studio.engine.library import ModelSummary, get_model, model_exists, publish_model
from studio.engine.numerics import gaussian_noise
from studio.engine.runtime.package import EXPORT_FOLDER, MANIFEST_FILE, MANIFEST_FORMAT
from studio.engine.untrusted.model_files import CARD_FILE
from studio.engine.untrusted.values import open_regular, size_text
from studio.errors import AlreadyExistsError, StudioError
from studio.files import StagingFolder
from studio.store.database import Store

if TYPE_CHECKING:
    import onnxruntime as ort

FILE_NAME = "generator.onnx"
CONFIG_FILE = "config.json"
# Studio's own generators stay far below this; a file above it is refused before a byte is parsed
# (protobuf itself stops at 2 GiB).
MAX_ONNX_BYTES = 1 << 30
MAX_LATENT_SIZE = 1 << 20  # numbers in one image's noise
MAX_FIXED_BATCH = 4096
PROBE_SEEDS = tuple(range(8))  # the seeded noise the import runs the file on
RANGE_SLACK = 1e-3  # how far outside a value range float rounding may push an output
BATCH_TOLERANCE = 1e-3  # of the value range's width: a seed's image alone and in a batch may differ by this
_FLOAT_INPUT = "tensor(float)"
_FLOAT_OUTPUTS = ("tensor(float)", "tensor(float16)", "tensor(double)")


@dataclass(frozen=True)
class Inspection:
    """What the checks learnt of a generator file (all that Studio will ever know of it)."""

    input_name: str
    output_name: str
    latent_shape: tuple[int, ...]
    fixed_batch: int | None  # the batch size of a file without a dynamic batch axis
    resolution: int
    channels: int
    value_range: tuple[float, float]
    range_inferred: bool  # True: from the outputs' min/max; False: given with --value-range
    observed: tuple[float, float]  # min and max of the outputs on the probe seeds
    parameter_count: int
    opset: int | None

    def architecture(self) -> dict[str, Any]:
        """The config.json `architecture` of the model."""
        return {
            "latent_shape": list(self.latent_shape),
            "value_range": list(self.value_range),
            "value_range_source": "inferred" if self.range_inferred else "given",
            "observed_range": [round(end, 6) for end in self.observed],
            "input": self.input_name,
            "output": self.output_name,
            "fixed_batch": self.fixed_batch,
        }


# --- the flags ------------------------------------------------------------------------------


def parse_value_range(text: str) -> tuple[float, float]:
    """`--value-range` text ("-1,1", "0,1" or "0,255") as (low, high); a one-line StudioError otherwise."""
    try:
        low, high = (float(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        low = high = math.nan
    if (low, high) not in VALUE_RANGES:
        raise StudioError(f"--value-range takes -1,1, 0,1 or 0,255 (written --value-range=-1,1), not '{text}'")
    return (low, high)


def parse_latent_shape(text: str) -> tuple[int, ...]:
    """`--latent-shape` text ("100" or "100,1,1": one image's noise, batch left out) as a tuple of sizes."""
    try:
        shape = tuple(int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        shape = ()
    if not shape or len(shape) > 7 or min(shape) < 1 or math.prod(shape) > MAX_LATENT_SIZE:
        raise StudioError(
            f"--latent-shape takes the noise's sizes without the batch, such as 100 or 100,1,1 "
            f"(at most 7 sizes, {MAX_LATENT_SIZE:,} numbers), not '{text}'"
        )
    return shape


# --- reading and checking the file ----------------------------------------------------------


def read_onnx_file(path: Path, links_within: Path | None = None) -> bytes:
    """The bytes of an ONNX file, size first: refused when it is a symbolic link (outside a Hugging Face
    cache repository), not a regular file, or larger than MAX_ONNX_BYTES."""
    real = follow(path, links_within)
    try:
        with open_regular(real) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_ONNX_BYTES:
                raise StudioError(
                    f"{path} is {size_text(size)}, larger than the {size_text(MAX_ONNX_BYTES)} "
                    "an imported generator may be"
                )
            data = handle.read(MAX_ONNX_BYTES + 1)
    except IsADirectoryError:
        raise StudioError(f"{path} is a folder, not an .onnx file") from None
    except OSError as error:
        raise StudioError(f"{path} cannot be read ({error.strerror or error})") from None
    if len(data) > MAX_ONNX_BYTES:  # it grew while being read
        raise StudioError(f"{path} is larger than the {size_text(MAX_ONNX_BYTES)} an imported generator may be")
    return data


def _all_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a graph holds: initializers and the constants of its nodes, subgraphs included."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _node_tensors(graph.node)


def _node_tensors(nodes: Sequence[onnx.NodeProto]) -> Iterator[onnx.TensorProto]:
    for node in nodes:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("sparse_tensor"):
                yield attribute.sparse_tensor.values
            for sparse in attribute.sparse_tensors:
                yield sparse.values
            if attribute.HasField("g"):
                yield from _all_tensors(attribute.g)
            for graph in attribute.graphs:
                yield from _all_tensors(graph)


def parse_model(data: bytes, where: Path) -> onnx.ModelProto:
    """The protobuf of an ONNX file, refused when it is not one, fails the checker or uses external data."""
    not_onnx = f"{where} is not an ONNX model"
    try:
        model = onnx.load_model_from_string(data)
    except Exception as error:  # noqa: BLE001 - protobuf's DecodeError, and whatever else bad bytes raise
        raise StudioError(f"{not_onnx} ({str(error).splitlines()[0][:200] if str(error) else 'unreadable'})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise StudioError(f"{not_onnx} (it holds no graph)")
    try:
        external = any(
            onnx.external_data_helper.uses_external_data(tensor)
            for tensor in (*_all_tensors(model.graph), *_node_tensors([n for f in model.functions for n in f.node]))
        )
    except RecursionError:
        raise StudioError(f"{not_onnx} (its graphs nest too deeply)") from None
    if external:
        raise StudioError(
            f"{where} keeps its weights in separate files (ONNX external data): Studio imports a single "
            "self-contained file; save the model without external data"
        )
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else "invalid"
        raise StudioError(f"{where} fails the ONNX checker ({first})") from None
    return model


def _session(data: bytes, where: Path) -> ort.InferenceSession:
    from studio.engine.runtime.providers import quiet_session  # onnxruntime: loaded only here

    try:
        return quiet_session(data, ["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types for files it cannot run
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise StudioError(f"ONNX Runtime cannot run {where} ({first})") from None


def _latent_shape(
    where: Path, name: str, dims: Sequence[Any], given: tuple[int, ...] | None
) -> tuple[int | None, tuple[int, ...]]:
    """(fixed batch or None, one image's noise shape) from the input's dims and the --latent-shape flag."""
    shown = "x".join(str(d) if isinstance(d, int) else "?" for d in dims)
    if len(dims) < 2:
        raise StudioError(
            f"{where}'s input '{name}' has shape [{shown}]: Studio needs a batch axis followed by the noise's sizes"
        )
    batch, rest = dims[0], list(dims[1:])
    fixed = batch if isinstance(batch, int) and batch > 0 else None
    if fixed is not None and fixed > MAX_FIXED_BATCH:
        raise StudioError(f"{where}'s input '{name}' takes batches of exactly {fixed}, more than {MAX_FIXED_BATCH}")
    if given is not None:
        fixed_sizes = [(d, g) for d, g in zip(rest, given, strict=False) if isinstance(d, int) and d > 0]
        if len(given) != len(rest) or any(d != g for d, g in fixed_sizes):
            raise StudioError(
                f"--latent-shape {','.join(map(str, given))} does not fit {where}'s input '{name}' of shape [{shown}]"
            )
        return fixed, given
    if any(not (isinstance(d, int) and d > 0) for d in rest):
        example = ",".join(str(d) if isinstance(d, int) and d > 0 else "100" for d in rest)
        raise StudioError(
            f"{where}'s input '{name}' has shape [{shown}] with sizes fixed only when run: give them with "
            f"--latent-shape (e.g. --latent-shape {example})"
        )
    shape = tuple(int(d) for d in rest)
    if math.prod(shape) > MAX_LATENT_SIZE:
        raise StudioError(
            f"{where}'s input '{name}' takes {math.prod(shape):,} numbers per image, more than {MAX_LATENT_SIZE:,}"
        )
    return fixed, shape


def _run(session: ort.InferenceSession, name: str, latents: np.ndarray, fixed: int | None, where: Path) -> np.ndarray:
    """The file's outputs for these latents (padded to its fixed batch when it has one)."""
    chunk = fixed or len(latents)
    parts = []
    for start in range(0, len(latents), chunk):
        part = latents[start : start + chunk]
        count = len(part)
        if fixed is not None and count < fixed:
            part = np.concatenate([part, np.zeros((fixed - count, *part.shape[1:]), np.float32)])
        try:
            output = session.run(None, {name: np.ascontiguousarray(part)})[0]
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types at run time
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise StudioError(f"{where} failed on Studio's noise ({first})") from None
        output = np.asarray(output)
        if output.ndim != 4 or output.shape[0] != len(part):
            raise StudioError(
                f"{where} returns shape {list(output.shape)} for {len(part)} noise vectors: Studio needs "
                "N x C x H x W images (N the batch, C 1 or 3)"
            )
        parts.append(output[:count])
    return np.concatenate(parts)


def _check_images(images: np.ndarray, where: Path) -> tuple[int, int]:
    """(resolution, channels) of the probe's images, refused unless float NCHW, square, a Studio size, finite."""
    if not np.issubdtype(images.dtype, np.floating):
        raise StudioError(f"{where} returns {images.dtype} images: Studio imports generators with float outputs")
    _, channels, height, width = images.shape
    if channels not in (1, 3):
        hint = " (it looks channels-last: Studio needs N x C x H x W)" if images.shape[3] in (1, 3) else ""
        raise StudioError(f"{where} returns {channels}-channel images, not 1 (grey) or 3 (RGB){hint}")
    if height != width:
        raise StudioError(f"{where} returns {height}x{width} images: Studio takes square images")
    if height not in RESOLUTIONS:
        raise StudioError(f"{where} returns {height} px images: Studio takes {describe_resolutions()} px")
    if not np.isfinite(images).all():
        raise StudioError(f"{where} returned NaN or infinite values on seeded noise: not imported")
    return int(height), int(channels)


def infer_value_range(low: float, high: float) -> tuple[float, float] | None:
    """The value range outputs spanning [low, high] come in: within [-1, 1] with negatives -> (-1, 1);
    within [0, 1] -> (0, 1); within [0, 255] and above 1 -> (0, 255); else None (ambiguous)."""
    slack = RANGE_SLACK
    if -1 - slack <= low < -slack and high <= 1 + slack:
        return (-1.0, 1.0)
    if -slack <= low and high <= 1 + slack:
        return (0.0, 1.0)
    if -slack * 255 <= low and 1 + slack < high <= 255 * (1 + slack):
        return (0.0, 255.0)
    return None


def inspect_generator(
    data: bytes,
    where: Path,
    value_range: tuple[float, float] | None = None,
    latent_shape: tuple[int, ...] | None = None,
) -> Inspection:
    """Check an ONNX generator's bytes and learn what Studio needs to run it; a one-line StudioError otherwise."""
    model = parse_model(data, where)
    session = _session(data, where)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        names = ", ".join(f"'{i.name}'" for i in inputs) or "none"
        raise StudioError(
            f"{where} takes {len(inputs)} inputs ({names}): Studio imports generators with one noise input"
        )
    if len(outputs) != 1:
        names = ", ".join(f"'{o.name}'" for o in outputs)
        raise StudioError(
            f"{where} has {len(outputs)} outputs ({names}): Studio imports generators with one image output"
        )
    source, target = inputs[0], outputs[0]
    if source.type != _FLOAT_INPUT:
        raise StudioError(
            f"{where}'s input '{source.name}' is {source.type}: Studio feeds float32 noise (tensor(float))"
        )
    if target.type not in _FLOAT_OUTPUTS:
        raise StudioError(
            f"{where}'s output '{target.name}' is {target.type}: Studio imports generators of float images"
        )
    fixed, shape = _latent_shape(where, source.name, list(source.shape), latent_shape)
    latents = gaussian_noise(PROBE_SEEDS, shape)
    images = _run(session, source.name, latents, fixed, where)
    resolution, channels = _check_images(images, where)
    low, high = float(images.min()), float(images.max())
    chosen = value_range or infer_value_range(low, high)
    if chosen is None:
        raise StudioError(
            f"{where}'s outputs on seeded noise span [{low:.3g}, {high:.3g}], which fits none of -1..1, 0..1 "
            "or 0..255: say which with --value-range=-1,1, --value-range=0,1 or --value-range=0,255"
        )
    if fixed is None:
        # Same seed, same image: the first seed alone must give what it gave in the batch.
        alone = _run(session, source.name, latents[:1], None, where)
        if float(np.max(np.abs(alone.astype(np.float64) - images[:1]))) > BATCH_TOLERANCE * (chosen[1] - chosen[0]):
            raise StudioError(
                f"{where} makes a different image of the same noise in a batch than alone (batch statistics?): "
                "Studio needs each seed to give one image; export it in inference mode"
            )
    parameters = sum(math.prod(tensor.dims) for tensor in model.graph.initializer)
    opset = next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), None)
    return Inspection(
        source.name,
        target.name,
        shape,
        fixed,
        resolution,
        channels,
        chosen,
        value_range is None,
        (low, high),
        int(parameters),
        int(opset) if opset is not None else None,
    )


# --- writing the model ----------------------------------------------------------------------


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True).encode("utf-8")


def import_onnx_generator(
    store: Store,
    path: Path,
    name: str | None = None,
    *,
    value_range: tuple[float, float] | None = None,
    latent_shape: tuple[int, ...] | None = None,
    fallback_name: str | None = None,
    origin: Mapping[str, Any] | None = None,
    links_within: Path | None = None,
    model_card: bytes | None = None,
) -> ModelSummary:
    """Check an ONNX generator file and add it to the library as an onnx_generator model.

    `fallback_name` names it when `name` is not given (else the file's stem); `origin` adds to the
    recorded origin (a Hugging Face repository and revision); `links_within` is the cache repository
    whose symbolic links may be followed; `model_card` is kept as the model's README.md.
    """
    path = Path(path)
    name = validate_name(name or default_name(fallback_name or path.stem))
    if model_exists(store, name):
        raise AlreadyExistsError(f"a model named '{name}' already exists: give another with --name")
    data = read_onnx_file(path, links_within)
    found = inspect_generator(data, path, value_range, latent_shape)
    digest = hashlib.sha256(data).hexdigest()
    now = datetime.now(UTC).isoformat(timespec="seconds")
    hyperparameters = {h.name: h.default for h in DECLARATION.full_schema()}
    recorded_origin = {
        "kind": "onnx",
        "source": str(path.absolute()),
        "repo_id": None,
        "revision": None,
        "license": card_license(model_card),
        **dict(origin or {}),
    }
    config = {
        "format": 1,
        "studio_version": __version__,
        "name": name,
        "family": DECLARATION.name,
        "resolution": found.resolution,
        "channels": found.channels,
        "hyperparameters": hyperparameters,
        "steps": 0,
        "weights_hash": digest,
        "architecture": found.architecture(),
        "origin": recorded_origin,
        "created_at": now,
    }
    manifest = {
        "format": MANIFEST_FORMAT,
        "imported": True,
        "model": name,
        "family": DECLARATION.name,
        "resolution": found.resolution,
        "channels": found.channels,
        "value_range": list(found.value_range),
        "latent_shape": list(found.latent_shape),
        **({"fixed_batch": found.fixed_batch} if found.fixed_batch is not None else {}),
        "hyperparameters": hyperparameters,
        "sampling_schema": [h.as_dict() for h in DECLARATION.sampling_schema()],
        "capabilities": sorted(DECLARATION.capabilities),
        "studio_version": __version__,
        "weights_hash": digest,
        "steps_trained": 0,
        **({"opset": found.opset} if found.opset is not None and 1 <= found.opset <= 1000 else {}),
        "exported_at": now,
        "networks": {
            GENERATOR_ROLE: {
                "file": FILE_NAME,
                "sha256": digest,
                "bytes": len(data),
                "inputs": [found.input_name],
                "outputs": [found.output_name],
            }
        },
    }
    staging = StagingFolder(store.home.staging, f"model-{name}")
    try:
        export = staging.path / EXPORT_FOLDER
        export.mkdir()
        _write(export / FILE_NAME, data)  # the very bytes that were checked
        _write(export / MANIFEST_FILE, _json(manifest))
        fsync_path(export)
        _write(staging.path / CONFIG_FILE, _json(config))
        if model_card:
            _write(staging.path / CARD_FILE, model_card)
        fsync_path(staging.path)
        publish_model(
            store,
            staging,
            name,
            family=DECLARATION.name,
            resolution=found.resolution,
            channels=found.channels,
            hyperparameters=hyperparameters,
            weights_hash=digest,
            steps=0,
            parameter_count=found.parameter_count,
        )
    except BaseException:
        staging.discard()
        raise
    return get_model(store, name)

"""Export a model's inference networks to ONNX, check them, and prove they compute what torch computes.

`models/NAME/onnx/` holds one `.onnx` file per network the family needs at inference (GAN generator;
VAE encoder and decoder; the PixelCNN; the diffusion denoiser: each family's `network_exports` says which,
with example inputs), each with a dynamic batch axis, plus
`manifest.json`. The manifest and each file's `metadata_props` carry the same facts (family, size,
value range, latent shape, scheduler, weights hash, studio version), so either alone says what a file
is. Every file passes `onnx.checker` (full check) and a parity run: the same random inputs through
torch and ONNX Runtime, largest difference at most 1e-4 (fp32), else the export fails and nothing is
kept. The folder is built aside and swapped in whole, so a crash leaves the previous export usable.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from studio import __version__
from studio.engine.checkpoints import load_model, weights_hash
from studio.engine.families.base import GeneratorFamily, NetworkExport
from studio.engine.jobs import CancelToken, Finished, Job, Progress
from studio.engine.model_locks import EXPORT_LOCK, hold_model
from studio.engine.runtime.package import (
    EXPORT_FOLDER,
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    file_sha256,
    metadata_for,
    recover_export,
)
from studio.engine.runtime.providers import quiet_session
from studio.errors import StudioError
from studio.files import StagingFolder
from studio.store.database import Store

OPSET = 18
# fp32: largest difference allowed between torch and ONNX Runtime, relative to the output's largest
# magnitude when that is above 1 (float32 rounding grows with the values: an imported decoder's raw
# outputs can reach several units), absolute below.
PARITY_TOLERANCE = 1e-4
FP16_TOLERANCE = 2e-2  # half precision, relative to the output's largest magnitude (at least 1)
LOCK_FILE = EXPORT_LOCK  # held in the model's folder while it exports


@dataclass
class ExportResult:
    """What was written and how closely each file matches torch."""

    model: str
    folder: str
    networks: dict[str, dict[str, Any]]
    seconds: float
    fp16: bool

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`studio export --json`)."""
        return {
            "model": self.model,
            "folder": self.folder,
            "networks": self.networks,
            "seconds": round(self.seconds, 2),
            "fp16": self.fp16,
        }


class _HalfPrecision(nn.Module):
    """A network computing in float16 behind float32 inputs and outputs (the `--fp16` variant)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = copy.deepcopy(module).half()

    def forward(self, *inputs: torch.Tensor) -> Any:
        """Floating inputs to half, outputs back to float32."""
        cast = [x.half() if x.is_floating_point() else x for x in inputs]
        outputs = self.module(*cast)
        if isinstance(outputs, tuple):
            return tuple(o.float() for o in outputs)
        return outputs.float()


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter logs and warns at length about things users cannot act on; keep stdout clean."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def export_network(spec: NetworkExport, module: nn.Module, path: Path, metadata: dict[str, str]) -> None:
    """torch -> ONNX at `path` with metadata_props, then the full checker."""
    dims: dict[str, torch.export.Dim] = {}

    def dim(name: str) -> torch.export.Dim:
        if name not in dims:
            dims[name] = torch.export.Dim(name, min=1, max=65536)
        return dims[name]

    per_input = tuple(
        {axis: dim(symbol) for axis, symbol in spec.dynamic.get(name, {}).items()} for name in spec.input_names
    )
    # torch.export matches dynamic_shapes to forward's signature: the half wrapper takes *inputs.
    dynamic_shapes: Any = {"inputs": per_input} if isinstance(module, _HalfPrecision) else per_input
    module.eval()
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                module,
                spec.inputs,
                None,
                dynamo=True,
                input_names=list(spec.input_names),
                output_names=list(spec.output_names),
                dynamic_shapes=dynamic_shapes,
                opset_version=OPSET,
                verbose=False,
                external_data=False,
            )
            assert program is not None  # export returns None only without dynamo=True
            model = program.model_proto
    except Exception as error:  # noqa: BLE001 - the exporter raises many types; the user needs one line
        raise StudioError(f"could not export the {spec.role} to ONNX: {str(error).splitlines()[0][:300]}") from None
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise StudioError(f"the exported {spec.role} failed the ONNX checker: {str(error).splitlines()[0]}") from None
    with open(path, "wb") as handle:
        handle.write(model.SerializeToString())
        handle.flush()
        os.fsync(handle.fileno())


def parity_difference(spec: NetworkExport, module: nn.Module, path: Path) -> tuple[float, float]:
    """Largest absolute difference between torch and ONNX Runtime (CPU) on the parity inputs, and the
    largest output magnitude (at least 1), which scales the tolerances."""
    session = quiet_session(path, ["CPUExecutionProvider"])
    largest = 0.0
    scale = 1.0
    with torch.no_grad():
        for arrays in spec.parity_inputs:
            expected = module(*[torch.from_numpy(a) for a in arrays])
            expected = expected if isinstance(expected, tuple) else (expected,)
            produced = session.run(None, dict(zip(spec.input_names, arrays, strict=True)))
            for want, got in zip(expected, produced, strict=True):
                want_array = want.float().numpy()
                if want_array.shape != got.shape:
                    raise StudioError(f"the exported {spec.role} returns shape {got.shape}, torch {want_array.shape}")
                largest = max(largest, float(np.max(np.abs(want_array - got))) if got.size else 0.0)
                scale = max(scale, float(np.max(np.abs(want_array))) if got.size else 0.0)
    return (largest if np.isfinite(largest) else float("inf")), scale


def export_model(store: Store, model: str, fp16: bool = False, cancel: CancelToken | None = None) -> Job:
    """Export every inference network of `model`; yields Progress, then Finished(ExportResult)."""
    cancel = cancel or CancelToken()
    hold = hold_model(store, model)  # nobody deletes the model while it exports
    hold.add_exclusive(LOCK_FILE, f"model '{model}' is being exported by another process: wait for it to finish")
    folder = hold.folder
    staged: StagingFolder | None = None
    swapped = False
    try:
        recover_export(folder)
        # Exports by older versions staged inside the model folder; a killed one left its files there.
        for leftover in (*folder.glob(f".{EXPORT_FOLDER}.partial-*"), *folder.glob(f".{EXPORT_FOLDER}.old-*")):
            shutil.rmtree(leftover, ignore_errors=True)  # we hold the export lock: nobody else writes them
        started = time.monotonic()
        loaded = load_model(folder, torch.device("cpu"), with_optimizers=False)
        family = loaded.family
        family.train_mode(False)
        exports = family.network_exports(np.random.default_rng(0))
        spec = family.spec()
        digest = weights_hash(family)
        latent = _latent_shape(family)
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "model": model,
            "family": family.name,
            "resolution": family.resolution,
            "channels": family.channels,
            "value_range": [-1.0, 1.0],
            "latent_shape": latent,
            "hyperparameters": dict(family.hparams),
            "sampling_schema": [h.as_dict() for h in spec.sampling_schema],
            "scheduler": dict(spec.scheduler) if spec.scheduler else None,
            "reach": spec.reach,
            "extras": dict(spec.extras),
            "classes": list(spec.classes),
            "capabilities": sorted(family.pipeline().capabilities),
            "studio_version": __version__,
            "weights_hash": digest,
            "steps_trained": loaded.state.step,
            "opset": OPSET,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "networks": {},
        }
        # Built in the home's staging area: if this process dies, the next start sweeps the files.
        staged = StagingFolder(store.home.staging, f"export-{model}")
        staging = staged.path
        variants = [("fp32", False)] + ([("fp16", True)] if fp16 else [])
        total = len(exports) * len(variants)
        done = 0
        for export in exports:
            entry: dict[str, Any] = {}
            for precision, half in variants:
                cancel.check()
                yield Progress("exporting", done, total, f"{export.role} ({precision})")
                module = _HalfPrecision(export.module) if half else export.module
                file_name = f"{export.role}.fp16.onnx" if half else f"{export.role}.onnx"
                path = staging / file_name
                export_network(export, module, path, metadata_for(manifest, export.role, precision))
                yield Progress("checking", done, total, f"{export.role} ({precision}): parity with torch")
                difference, scale = parity_difference(export, export.module, path)
                tolerance = (FP16_TOLERANCE if half else PARITY_TOLERANCE) * scale
                if not difference <= tolerance:
                    raise StudioError(
                        f"the exported {export.role} ({precision}) differs from torch by {difference:.3g} "
                        f"(allowed {tolerance:.1g}): the export was not kept"
                    )
                record = {
                    "file": file_name,
                    "sha256": file_sha256(path),
                    "bytes": path.stat().st_size,
                    "max_abs_difference": difference,
                    "tolerance": tolerance,
                    "inputs": list(export.input_names),
                    "outputs": list(export.output_names),
                }
                if half:
                    entry["fp16"] = record
                else:
                    entry.update(record)
                done += 1
            manifest["networks"][export.role] = entry
        manifest_path = staging / MANIFEST_FILE
        with open(manifest_path, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        _swap_in(folder, staged)
        swapped = True
        result = ExportResult(
            model, str(folder / EXPORT_FOLDER), manifest["networks"], time.monotonic() - started, fp16
        )
        yield Progress("exporting", total, total, "done")
        yield Finished(result)
    finally:
        if staged is not None and not swapped:
            staged.discard()
        hold.close()


def _latent_shape(family: GeneratorFamily) -> list[int] | None:
    try:
        return list(family.pipeline().latent_shape())
    except StudioError:
        return None


def _swap_in(folder: Path, staged: StagingFolder) -> None:
    """Replace folder/onnx by the staged folder: the old one is renamed aside first, deleted last."""
    final = folder / EXPORT_FOLDER
    old = folder / f".{EXPORT_FOLDER}.old-{uuid.uuid4().hex[:8]}"
    if final.exists():
        os.replace(final, old)
    staged.publish(final)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    # Marker dropped after the swap: a crash in between leaves an empty marker file in onnx/, never
    # an unmarked copy of the networks in the staging area that no sweep would remove.
    staged.commit()
    shutil.rmtree(old, ignore_errors=True)

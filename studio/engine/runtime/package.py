"""An exported model on disk: read and verify its manifest and files, open sessions, build its pipeline.

Nothing here imports torch: an export runs wherever numpy and onnxruntime are installed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.engine.families import registry
from studio.engine.families.pipeline import ModelSpec, Pipeline
from studio.engine.families.schema import Hyperparameter
from studio.engine.runtime.provider_names import ProviderChoice
from studio.engine.untrusted.manifest import read_export_manifest
from studio.engine.untrusted.values import JsonLimits, MalformedError, parse_json
from studio.errors import StudioError

if TYPE_CHECKING:  # onnxruntime loads only when a session opens (see provider_names)
    import onnxruntime as ort

EXPORT_FOLDER = "onnx"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
# The facts every file's metadata_props repeats from the manifest (checked against it at load).
_CHECKED_METADATA = ("family", "resolution", "channels", "weights_hash")
_PROPS_LIMITS = JsonLimits(max_bytes=64 << 10, max_depth=8, max_members=1000, max_string=4096)


class ExportError(StudioError):
    """An export that is missing, damaged, or not what it claims to be."""


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def metadata_for(manifest: Mapping[str, Any], role: str, precision: str) -> dict[str, str]:
    """The metadata_props of one exported file: the manifest's facts as strings (JSON where structured)."""
    facts = {
        key: manifest[key]
        for key in (
            "family",
            "model",
            "resolution",
            "channels",
            "value_range",
            "latent_shape",
            "scheduler",
            "reach",
            "studio_version",
            "weights_hash",
            "steps_trained",
            "hyperparameters",
        )
    }
    if manifest.get("classes"):
        facts["classes"] = manifest["classes"]
    facts.update(role=role, precision=precision)
    return {
        f"studio.{key}": value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        for key, value in facts.items()
    }


def recover_export(model_folder: Path) -> None:
    """Undo a swap cut short by a crash: with no onnx/ but an old copy aside, put the old copy back."""
    final = model_folder / EXPORT_FOLDER
    if final.exists():
        return
    aside = sorted(model_folder.glob(f".{EXPORT_FOLDER}.old-*"), key=lambda p: p.stat().st_mtime)
    if aside:
        os.replace(aside[-1], final)


def read_manifest(folder: Path) -> dict[str, Any]:
    """manifest.json of an export folder, checked: bounded JSON, file names, checksums, facts and settings typed."""
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ExportError(f"no ONNX export in {folder.parent.name or folder}: run `studio export MODEL` first")
    try:
        return read_export_manifest(path, MANIFEST_FORMAT)
    except StudioError as error:
        raise ExportError(str(error)) from None


@dataclass
class OnnxModel:
    """An export, opened: its manifest, the provider that runs it, and the family pipeline over its sessions."""

    folder: Path
    manifest: dict[str, Any]
    pipeline: Pipeline
    choice: ProviderChoice
    precision: str
    sessions: dict[str, ort.InferenceSession] = field(default_factory=dict)

    @property
    def provider(self) -> str:
        """Short name of the provider that actually runs the sessions ("cpu", "cuda", ...)."""
        return self.choice.provider


def load_exported(
    folder: Path,
    provider: str = "auto",
    precision: str = "fp32",
    expect: Mapping[str, Any] | None = None,
    threads: int | None = None,
) -> OnnxModel:
    """Open an export folder: verify the manifest against each file (checksum and metadata), open sessions.

    `expect` holds facts the caller knows (family, resolution, channels, weights_hash): a mismatch
    is refused with the reason (another model's export, or one made before more training).
    """
    if precision not in ("fp32", "fp16"):
        raise ExportError(f"unknown precision '{precision}': choose fp32 or fp16")
    manifest = read_manifest(folder)
    family = manifest["family"]
    if expect:
        for key in ("family", "resolution", "channels"):
            if key in expect and manifest.get(key) != expect[key]:
                raise ExportError(
                    f"the ONNX export is a {manifest.get('resolution')}px {manifest.get('family')} model, "
                    f"not this {expect.get('resolution')}px {expect.get('family')} one: export the model again"
                )
        if expect.get("weights_hash") and manifest["weights_hash"] != expect["weights_hash"]:
            raise ExportError(
                "the ONNX export is out of date (the weights changed after it was made): export the model again"
            )
    # A file made elsewhere (an imported generator) carries no Studio metadata_props: its manifest says
    # "imported", which only a family with no torch side may say (Studio's own exports are checked in full).
    imported = manifest.get("imported") is True
    if imported and registry.declaration(family).trainable:
        raise ExportError(f"the manifest marks a {family} export as imported, which Studio's exports never are")
    if not imported and not registry.declaration(family).trainable:
        raise ExportError(f"the manifest of an {family} model lacks its imported mark: import the model again")
    # Imported here: onnxruntime loads (seconds of start-up, files of its own) only when a session opens.
    from studio.engine.runtime import providers

    sessions: dict[str, ort.InferenceSession] = {}
    choice: ProviderChoice | None = None
    conditional = bool(manifest.get("classes"))  # a conditional model's networks also take the class weights
    for role, inputs in registry.declaration(family).network_inputs(conditional).items():
        entry = manifest["networks"].get(role)
        if not isinstance(entry, dict):
            raise ExportError(f"the export lacks its {role} network: export the model again")
        if precision == "fp16":
            entry = entry.get("fp16")
            if not isinstance(entry, dict):
                raise ExportError("the export has no fp16 variant: export again with --fp16")
        path = folder / str(entry.get("file", ""))
        if not path.is_file():
            raise ExportError(f"{path.name} is missing from the export: export the model again")
        if file_sha256(path) != entry.get("sha256"):
            raise ExportError(f"{path.name} does not match its manifest (damaged or replaced): export the model again")
        try:
            session, chosen = providers.open_session(path, provider if choice is None else choice.provider, threads)
        except StudioError:
            raise
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types for bad files
            raise ExportError(f"{path.name} is not a valid ONNX model ({str(error).splitlines()[0][:200]})") from None
        choice = choice or chosen
        if imported:
            _check_names(path, session, entry)
        else:
            _check_metadata(path, session, manifest, role, inputs)
        sessions[role] = session
    assert choice is not None
    return OnnxModel(folder, manifest, build_pipeline(manifest, sessions), choice, precision, sessions)


def _check_metadata(
    path: Path, session: ort.InferenceSession, manifest: Mapping[str, Any], role: str, inputs: tuple[str, ...]
) -> None:
    props = session.get_modelmeta().custom_metadata_map
    for key in (*_CHECKED_METADATA, "role"):
        want = role if key == "role" else manifest[key]
        text = props.get(f"studio.{key}")
        got = text if key in ("role", "family", "weights_hash") else _json_or_none(text)
        if got != want:
            raise ExportError(
                f"{path.name} disagrees with its manifest ({key}: file {got!r}, manifest {want!r}): "
                "export the model again"
            )
    names = tuple(i.name for i in session.get_inputs())
    if names != inputs:
        raise ExportError(f"{path.name} takes inputs {', '.join(names)}, expected {', '.join(inputs)}")


def _check_names(path: Path, session: ort.InferenceSession, entry: Mapping[str, Any]) -> None:
    """An imported file: its inputs and outputs are the ones its manifest recorded at import."""
    for kind, found in (("inputs", session.get_inputs()), ("outputs", session.get_outputs())):
        names = [value.name for value in found]
        if names != entry.get(kind):
            raise ExportError(f"{path.name} has {kind} {', '.join(names)}, not those recorded when it was imported")


def _json_or_none(text: str | None) -> Any:
    """A metadata_props value: JSON where structured (bounded: the file is as untrusted as its manifest)."""
    if text is None:
        return None
    try:
        return parse_json(text, _PROPS_LIMITS)
    except MalformedError:
        return text


def spec_from_manifest(manifest: Mapping[str, Any]) -> ModelSpec:
    """The pipeline's view of a model, from its manifest."""
    try:
        schema = tuple(Hyperparameter.from_dict(h) for h in manifest["sampling_schema"])
        return ModelSpec(
            manifest["family"],
            int(manifest["resolution"]),
            int(manifest["channels"]),
            dict(manifest["hyperparameters"]),
            schema,
            manifest.get("scheduler"),
            manifest.get("reach"),
            # A family's further facts (latent diffusion's latent grid), and what an imported generator's
            # pipeline needs to know of its file.
            {
                **dict(manifest.get("extras") or {}),
                **{key: manifest[key] for key in ("latent_shape", "value_range", "fixed_batch") if key in manifest},
            },
            tuple(manifest.get("classes") or ()),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ExportError(f"the manifest is malformed ({error}): export the model again") from None


def build_pipeline(manifest: Mapping[str, Any], sessions: Mapping[str, ort.InferenceSession]) -> Pipeline:
    """The family pipeline with each network callable running its ONNX Runtime session."""
    spec = spec_from_manifest(manifest)

    def runner(role: str, output: str | tuple[str, ...] | None = None) -> Any:
        session = sessions[role]
        names = [i.name for i in session.get_inputs()]
        # A tuple of output names returns those outputs as a tuple (gpt's transformer: logits and its cache).
        several = isinstance(output, tuple)
        outputs = list(output) if isinstance(output, tuple) else [output] if output else None

        def run(*arrays: np.ndarray) -> Any:
            produced = session.run(outputs, dict(zip(names, arrays, strict=True)))
            return tuple(produced) if several else produced[0]

        return run

    try:
        return registry.pipeline_class(spec.family).from_networks(spec, runner)
    except ExportError:
        raise
    except StudioError as error:
        raise ExportError(str(error)) from None

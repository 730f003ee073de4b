"""onnx_generator family: generators made elsewhere, imported as ONNX files (declaration and numpy pipeline;
no torch side, so no `model` module)."""

from studio.engine.families.onnx_generator.declaration import DECLARATION
from studio.engine.families.onnx_generator.pipeline import OnnxGeneratorPipeline

PIPELINE = OnnxGeneratorPipeline  # the registry asks every family for these two names

__all__ = ["DECLARATION", "PIPELINE", "OnnxGeneratorPipeline"]

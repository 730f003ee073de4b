"""DDPM and DDIM maths in numpy, shared by the torch family and the ONNX runtime (never imports torch)."""

from studio.engine.schedulers.ddim import DdimConfig, DdimScheduler
from studio.engine.schedulers.ddpm import DdpmScheduler
from studio.engine.schedulers.schedules import BETA_SCHEDULES, NoiseSchedule, SchedulerConfig

__all__ = ["BETA_SCHEDULES", "DdimConfig", "DdimScheduler", "DdpmScheduler", "NoiseSchedule", "SchedulerConfig"]

"""DDPM, DDIM and DPM-Solver++(2M) maths in numpy, shared by the torch family and the ONNX runtime (no torch)."""

from studio.engine.schedulers.ddim import DdimConfig, DdimScheduler
from studio.engine.schedulers.ddpm import DdpmScheduler
from studio.engine.schedulers.diffusers_config import (
    DiffusersScheduler,
    scheduler_from_diffusers,
    scheduler_to_diffusers,
)
from studio.engine.schedulers.dpm_solver import DpmSolverScheduler
from studio.engine.schedulers.schedules import (
    BETA_SCHEDULES,
    PREDICTION_TYPES,
    TIMESTEP_SPACINGS,
    VARIANCE_TYPES,
    NoiseSchedule,
    SchedulerConfig,
)

__all__ = [
    "BETA_SCHEDULES",
    "PREDICTION_TYPES",
    "TIMESTEP_SPACINGS",
    "VARIANCE_TYPES",
    "DdimConfig",
    "DdimScheduler",
    "DdpmScheduler",
    "DiffusersScheduler",
    "DpmSolverScheduler",
    "NoiseSchedule",
    "SchedulerConfig",
    "scheduler_from_diffusers",
    "scheduler_to_diffusers",
]

"""ONNX Runtime execution providers: which this build offers, which really work here, and quiet sessions.

`auto` tries the accelerated providers the build offers, keeps one only if a created session really
runs on it (`session.get_providers()`), and otherwise falls back to the CPU with one line of reason
rather than ONNX Runtime's wall of error text. TensorRT is tried only when asked for by name: it
compiles an engine on first use, which takes minutes.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from studio.engine.runtime.provider_names import AUTO_ORDER, PROVIDER_CHOICES, PROVIDERS, ProviderChoice, short_name
from studio.errors import StudioError

# ONNX Runtime (1.29 and later, in its official Linux and macOS builds) writes a persistent device
# id and a telemetry cache under $XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime and $TMPDIR
# as soon as it loads, and uploads usage events. Its one documented opt-out on these systems is this
# variable, read once when the library initialises: so it is set before the import, and only where
# the user has not chosen otherwise.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import onnxruntime as ort  # after the opt-out above, which it reads at load time

__all__ = [
    "AUTO_ORDER",
    "PROVIDERS",
    "PROVIDER_CHOICES",
    "ProviderChoice",
    "available_providers",
    "open_session",
    "quiet_session",
    "short_name",
    "usable_providers",
]

_QUIET = 3  # ONNX Runtime log severity: 3 = errors only
_SILENT = 4  # fatal only: while probing, a provider that fails to start is expected, not news
_preloaded = False
ort.set_default_logger_severity(_QUIET)
# Windows builds send events through the system's own telemetry, which only this call turns off (for
# the events after it); elsewhere it is a no-op once the variable above was read.
ort.disable_telemetry_events()


def available_providers() -> list[str]:
    """Short names of the providers this ONNX Runtime build offers (not necessarily usable)."""
    return [short_name(name) for name in ort.get_available_providers()]


def _preload_gpu_libraries() -> None:
    """Let ONNX Runtime find CUDA/cuDNN libraries installed as Python packages (onnxruntime >= 1.21)."""
    global _preloaded
    if _preloaded:
        return
    _preloaded = True
    preload = getattr(ort, "preload_dlls", None)
    if preload is None or "CUDAExecutionProvider" not in ort.get_available_providers():
        return
    # It prints what it could not find to stdout; a --json caller must get JSON only.
    with _stdout_to_devnull(), contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
        preload()


@contextlib.contextmanager
def _stdout_to_devnull() -> Any:
    """Silence C-level writes to stdout (file descriptor 1), which contextlib.redirect_stdout cannot."""
    try:
        saved = os.dup(1)
    except OSError:
        yield
        return
    try:
        sys.stdout.flush()
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_unusable: set[str] = set()


def quiet_session(
    model: Path | bytes, providers: Sequence[str], severity: int = _QUIET, threads: int | None = None
) -> ort.InferenceSession:
    """An InferenceSession that logs only errors (or nothing, while probing)."""
    options = ort.SessionOptions()
    options.log_severity_level = severity
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, sess_options=options, providers=list(providers))


def open_session(
    model: Path | bytes, requested: str = "auto", threads: int | None = None
) -> tuple[ort.InferenceSession, ProviderChoice]:
    """A session on the requested provider; `auto` picks the first accelerated one that really works."""
    if requested not in PROVIDER_CHOICES:
        raise StudioError(f"unknown provider '{requested}': choose {', '.join(PROVIDER_CHOICES)}")
    offered = ort.get_available_providers()
    if requested not in ("auto", "cpu"):
        full = PROVIDERS[requested]
        if full not in offered:
            raise StudioError(
                f"provider '{requested}' is not in this ONNX Runtime build (it offers "
                f"{', '.join(map(short_name, offered))}): use --provider auto"
            )
        _preload_gpu_libraries()
        session = _try_session(model, full, threads)
        if session is None:
            raise StudioError(
                f"provider '{requested}' could not start here (no usable device or driver): "
                "use --provider auto to fall back to the CPU"
            )
        return session, ProviderChoice(requested, requested)
    if requested == "auto":
        tried = []
        for short in AUTO_ORDER:
            full = PROVIDERS[short]
            if full not in offered:
                continue
            _preload_gpu_libraries()
            session = _try_session(model, full, threads)
            if session is not None:
                return session, ProviderChoice(requested, short)
            tried.append(short)
        note = f"{', '.join(tried)} could not start here; running on the CPU" if tried else ""
        return quiet_session(model, ["CPUExecutionProvider"], threads=threads), ProviderChoice(requested, "cpu", note)
    return quiet_session(model, ["CPUExecutionProvider"], threads=threads), ProviderChoice(requested, "cpu")


def _try_session(model: Path | bytes, provider: str, threads: int | None) -> ort.InferenceSession | None:
    """A session whose first provider really is `provider`, or None (ONNX Runtime falls back silently).

    A provider that failed once in this process is not tried again (each try costs a library load).
    """
    if provider in _unusable:
        return None
    # A provider library that cannot load logs through the default logger, not the session's.
    ort.set_default_logger_severity(_SILENT)
    try:
        # onnxruntime's Python layer prints an "EP Error" banner itself when a provider fails.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            session = quiet_session(model, [provider, "CPUExecutionProvider"], severity=_SILENT, threads=threads)
    except Exception:  # noqa: BLE001 - a provider that cannot start raises assorted runtime errors
        session = None
    finally:
        ort.set_default_logger_severity(_QUIET)
    if session is None or session.get_providers()[0] != provider:
        _unusable.add(provider)
        return None
    return session


def usable_providers(model: bytes) -> list[str]:
    """Short names of the offered providers on which a session over `model` (any tiny model) really runs."""
    usable = []
    for full in ort.get_available_providers():
        if full == "TensorrtExecutionProvider":
            continue  # compiling an engine to find out takes too long for a status query
        if full == "CPUExecutionProvider":
            usable.append("cpu")
            continue
        _preload_gpu_libraries()
        if _try_session(model, full, None) is not None:
            usable.append(short_name(full))
    return usable

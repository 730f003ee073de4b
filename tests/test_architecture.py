"""Layering and safety rules that hold for the whole code base."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import studio

PACKAGE = Path(studio.__file__).resolve().parent
ROOT = PACKAGE.parent
QT_MODULES = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "PySide2", "pyqtgraph", "qtpy")
HEADLESS = ("engine", "store")


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (PACKAGE / folder).rglob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_engine_and_store_source_never_import_qt() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _python_files(*HEADLESS)
        for name in _imported_modules(path)
        if name.split(".")[0] in QT_MODULES or name.startswith("studio.ui")
    ]
    assert offenders == []


def test_importing_every_headless_module_loads_no_qt() -> None:
    modules = [
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in _python_files(*HEADLESS)
        if "migrations" not in path.parts
    ]
    assert len(modules) >= 8
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r})))\n"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(output.stdout) == []


def test_decoding_workers_stay_light() -> None:
    """Worker processes import the decoder alone: no SQLAlchemy, no torch, no Qt."""
    script = (
        "import json, sys\nimport studio.engine.datasets.decode\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sqlalchemy', 'torch', 'PySide6', 'alembic', 'onnxruntime'})))\n"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(output.stdout) == []
    # The pool pickles its entry point by module: it must be the light decoder module.
    from studio.engine.datasets.decode import decode_chunk
    from studio.engine.datasets.importer import decode_chunk as used_by_importer

    assert used_by_importer is decode_chunk and decode_chunk.__module__ == "studio.engine.datasets.decode"


def test_no_unpickling_and_no_archive_extraction_anywhere() -> None:
    forbidden = (
        "import pickle",
        "pickle.load",
        "torch.load(",
        "extractall",
        "allow_pickle=True",
        "shelve.open",
        "marshal.load",
        "import dill",
        "import joblib",
    )
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        source = ast.unparse(tree)  # comments vanish; only code can offend
        offenders += [f"{path.relative_to(ROOT)}: {word}" for word in forbidden if word in source]
        for node in ast.walk(tree):
            # numpy's loader must always be told never to unpickle.
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and ast.unparse(node.func.value) in ("np", "numpy")
            ):
                keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
                if keywords.get("allow_pickle") != "False":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: np.load without allow_pickle=False")
    assert offenders == []


def test_runtime_source_imports_neither_torch_nor_the_torch_side_of_the_engine() -> None:
    """engine/runtime runs with numpy and onnxruntime alone (the behaviour is pinned by a subprocess test)."""
    allowed_studio = (
        "studio.engine.runtime",
        "studio.engine.schedulers",
        "studio.engine.numerics",
        "studio.engine.families",
        "studio.engine.untrusted",
        "studio.errors",
        "studio.limits",
    )
    offenders = []
    for path in _python_files("engine/runtime"):
        for name in _imported_modules(path):
            forbidden = name.split(".")[0] in ("torch", "onnx", "onnxscript", "sqlalchemy", *QT_MODULES)
            outside = name.startswith("studio") and not name.startswith(allowed_studio)
            torch_side = name.endswith(".model") or name == "studio.engine.families.base"
            outside = outside or torch_side
            if forbidden or outside:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_no_module_under_studio_passes_700_lines() -> None:
    """A file that grows past 700 lines is usually two: split it before it lands."""
    too_long = [
        f"{path.relative_to(ROOT)}: {count} lines"
        for path in sorted(PACKAGE.rglob("*.py"))
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > 700
    ]
    assert too_long == []

"""Class conditioning that every family shares (numpy only): class names, labels, class weights.

A conditional model knows its dataset's class names (in label order). Its networks take the class as
`class_weights`, float32 (N, K) for K classes: a one-hot row asks for one class, a row of zeros for
no class (what classifier-free guidance compares against), and a mix of two rows is the walk between
two classes that interpolation takes (every network's class embedding is linear in these weights).

A generation asks for one class by name, or for any: then each image's class is drawn from its own
seed, on a random stream separate from the image's latents, so a seed gives the same class and image
again in any batch and on either backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from studio.errors import StudioError

CLASS_OPTION = "class"  # the generation option naming the class (absent or None: any class)
ANY_CLASS = "any"  # what a user types for "any class"
CONDITIONAL_SETTING = "conditional"  # the common training setting: auto, yes or no
CONDITIONAL_CHOICES = ("auto", "yes", "no")
MIN_CLASSES = 2
MAX_CLASSES = 1000  # more classes than this are not what a folder-labelled dataset means
_CLASS_STREAM = 0xC1A55  # mixed with the seed: the class draw never shifts the image's own draws


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that puts "2" before "10" and "cat" before "dog"."""
    return tuple(int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", name))


def class_names(labels: Iterable[str | None]) -> tuple[str, ...]:
    """The distinct labels of a dataset in natural order (unlabelled images are not a class)."""
    return tuple(sorted({label for label in labels if label}, key=natural_key))


def resolve_classes(setting: str, labels: Sequence[str | None], dataset: str) -> tuple[str, ...]:
    """The classes a new model conditions on, from its `conditional` setting and its dataset's labels.

    auto: conditional when every image is labelled and there are 2 to MAX_CLASSES classes; yes:
    the same, or a one-line refusal saying why not; no: unconditional.
    """
    if setting == "no":
        return ()
    names = class_names(labels)
    unlabelled = sum(1 for label in labels if not label)
    problem = ""
    if len(names) < MIN_CLASSES:
        problem = f"dataset '{dataset}' has {len(names) or 'no'} class label{'s' if len(names) != 1 else ''}"
    elif unlabelled:
        problem = f"{unlabelled} image(s) of dataset '{dataset}' have no class label"
    elif len(names) > MAX_CLASSES:
        problem = f"dataset '{dataset}' has {len(names)} classes, more than {MAX_CLASSES}"
    if not problem:
        return names
    if setting == "yes":
        raise StudioError(
            f"conditional=yes needs a labelled dataset (classes from sub-folder names) but {problem}: "
            "import it from class folders, or train with --set conditional=no"
        )
    return ()


def label_indices(labels: Sequence[str | None], classes: Sequence[str]) -> np.ndarray:
    """Each image's class index (int64), for a dataset whose every label is one of `classes`."""
    index = {name: position for position, name in enumerate(classes)}
    unlabelled = sum(1 for label in labels if label is None)
    if unlabelled:
        raise StudioError(f"{unlabelled} image(s) have no class label, and a class-conditional model needs one")
    missing = sorted({str(label) for label in labels if label not in index})
    if missing:
        raise StudioError(
            f"the dataset has class(es) the model does not know ({', '.join(missing[:5])}): "
            f"the model's classes are {describe_classes(classes)}"
        )
    return np.array([index[str(label)] for label in labels], dtype=np.int64)


def describe_classes(classes: Sequence[str], limit: int = 12) -> str:
    """The class names for a message, shortened when there are many."""
    shown = ", ".join(classes[:limit])
    return shown + (f" and {len(classes) - limit} more" if len(classes) > limit else "")


def check_class(classes: Sequence[str], requested: Any, model: str = "the model") -> str | None:
    """A requested class name, checked: None (or "any") means any class; refused for an unknown one."""
    if requested is None:
        return None
    if not isinstance(requested, str):
        raise StudioError(f"a class is given by name, not {requested!r}")
    if requested.strip().lower() == ANY_CLASS and ANY_CLASS not in classes:
        return None
    if not classes:
        raise StudioError(
            f"{model} is not class-conditional, so it cannot be asked for class '{requested}': "
            "train it on a labelled dataset (conditional=auto or yes)"
        )
    if requested not in classes:
        raise StudioError(f"{model} has no class '{requested}': choose {describe_classes(classes)} or any")
    return requested


def draw_labels(seeds: Sequence[int], class_count: int) -> np.ndarray:
    """The class each seed gets when any class is asked for: uniform, from the seed's class stream."""
    return np.array(
        [np.random.default_rng([_CLASS_STREAM, seed]).integers(class_count) for seed in seeds], dtype=np.int64
    )


def labels_for(classes: Sequence[str], seeds: Sequence[int], requested: str | None) -> np.ndarray:
    """One class index per seed: the requested class for all, or each seed's own draw when None."""
    if requested is None:
        return draw_labels(seeds, len(classes))
    return np.full(len(seeds), list(classes).index(requested), dtype=np.int64)


def one_hot(labels: np.ndarray, class_count: int) -> np.ndarray:
    """Class weights (float32 N x K) of class indices; an index of -1 gives a row of zeros (no class)."""
    labels = np.asarray(labels, np.int64)
    weights = np.zeros((len(labels), class_count), np.float32)
    chosen = labels >= 0
    weights[np.flatnonzero(chosen), labels[chosen]] = 1.0
    return weights

"""The bounds of every integer a user can give Studio, in one place: the CLI, the engine and the UI check these.

Each bound says why it is where it is, so that a typo (`--steps 10**15`) or a hostile file (a seed
of 2**70) is refused in one line before it reaches SQLite, torch, numpy or a process pool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from studio.errors import StudioError

# SQLite stores integers as signed 64-bit: a seed or id past this cannot be saved (OverflowError).
# numpy's default_rng and torch.manual_seed accept every seed up to here, so the seed range is all
# of it; a 32-bit range would refuse seeds of images that older versions saved.
INT64_MAX = 2**63 - 1
# What runs a generation (the model's own torch networks, or its ONNX export): the only list there is.
BACKENDS = ("torch", "onnx")
# Where a dataset made from gallery items takes its class labels (auto: an item's class, else its model).
LABEL_SOURCES = ("auto", "class", "model", "tag", "none")
_SHOWN_DIGITS = 24  # a number longer than this is shortened when echoed in a message
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)  # what a user may type for a whole number


def readable(number: int) -> str:
    """2**63-1 as "2^63-1", 10**9 as "10^9", anything else as plain digits (shortened when huge)."""
    for power in (31, 32, 63, 64):
        if number == 2**power - 1:
            return f"2^{power}-1"
    if number >= 10**6 and str(number).rstrip("0") == "1":
        return f"10^{len(str(number)) - 1}"
    return shortened(number)


def shortened(number: int) -> str:
    """The digits of `number`, or its first digits and length when it has too many to echo."""
    if number.bit_length() > 13_000:  # str() refuses integers of more than 4,300 digits
        return f"{'-' if number < 0 else ''}(a number of thousands of digits)"
    text = str(number)
    digits = len(text.lstrip("-"))
    return text if digits <= _SHOWN_DIGITS else f"{text[:13]}... ({digits} digits)"


@dataclass(frozen=True)
class IntRange:
    """An inclusive range of integers and the name a user knows the value by ("seed", "step count")."""

    low: int
    high: int
    what: str

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def describe(self) -> str:
        """The range as `--help` and messages show it: "0..2^63-1"."""
        return f"{readable(self.low)}..{readable(self.high)}"

    def check(self, value: int) -> int:
        """`value` when inside the range, else a one-line StudioError naming the range."""
        if value not in self:
            raise StudioError(self.refusal(shortened(value) if isinstance(value, int) else repr(value)[:40]))
        return value

    def parse(self, text: str) -> int:
        """`text` as a whole number inside the range (decimal digits, a sign allowed), else a one-line StudioError."""
        digits = text.strip()
        if not _INTEGER.fullmatch(digits):
            raise StudioError(self.refusal(repr(text[:40])))
        if len(digits.lstrip("+-")) > _SHOWN_DIGITS:  # far outside any range; int() refuses past 4,300 digits
            raise StudioError(self.refusal(f"{digits[:13]}... ({len(digits.lstrip('+-'))} digits)"))
        return self.check(int(digits))

    def refusal(self, shown: str) -> str:
        """Why a value (as `shown`) is refused, in the words every check uses."""
        return f"invalid {self.what} {shown}: choose {readable(self.low)} to {readable(self.high)}"


SEED = IntRange(0, INT64_MAX, "seed")
# Rows get ids from 1 up; SQLite's rowid is a signed 64-bit integer.
ITEM_ID = IntRange(1, INT64_MAX, "gallery item id")
# A billion steps is weeks of training even for the smallest model at hundreds of steps a second:
# anything larger is a typo, and its ETA would be meaningless.
STEPS = IntRange(1, 10**9, "step count")
CHECKPOINT_EVERY = IntRange(1, STEPS.high, "checkpoint interval")
DIAGNOSTICS_EVERY = IntRange(0, STEPS.high, "diagnostics interval")  # 0: off
# torch.set_num_threads takes any int, but thousands of threads only thrash; 1024 covers the
# largest machines Studio may run on.
THREADS = IntRange(1, 1024, "thread count")
# Decoding processes for an import: each holds a Python interpreter (~50 MB), so past 64 a machine
# runs out of memory long before it runs out of cores.
WORKERS = IntRange(1, 64, "worker count")
# Images per generate/inpaint call: the gallery takes them one batch (one transaction) at a time,
# but a call still holds every result in memory until it ends.
COUNT = IntRange(1, 10_000, "count")
FRAMES = IntRange(2, 1_000, "frame count")  # interpolation frames, both ends included
# An animation's frame rate: a GIF counts frame times in hundredths of a second, so 50 fps is its finest.
ANIMATION_FPS = IntRange(1, 50, "frame rate")
ANIMATION_SCALE = IntRange(1, 16, "scale")  # pixel repeats of a small animation (crisp, not smoothed)
SAMPLE_COUNT = IntRange(1, 100_000, "count")  # images drawn for a built-in sample dataset
IMAGE_SIZE = IntRange(8, 512, "size")  # dataset images are square, this many pixels a side
PAGE = IntRange(1, 10_000, "limit")  # gallery items per page
RATING_VALUES = IntRange(0, 5, "rating")  # stars on a gallery item
MIN_RATING = IntRange(1, 5, "rating")  # the --min-rating filter (0 stars would match everything)
NEIGHBOURS = IntRange(1, 1_000, "neighbour count")  # "more like this" results
SCORE_SAMPLES = IntRange(16, 10_000, "sample count")  # images a quality score samples

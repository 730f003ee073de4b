"""Small engine jobs for UI tests: real generators driven by the real runner."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from studio.engine.jobs import CancelToken, Finished, Progress


def slow_job(steps: int) -> Callable[[CancelToken], Iterator[object]]:
    """A job of `steps` 10 ms steps that checks its token between steps and ends with "done"."""

    def factory(token: CancelToken) -> Iterator[object]:
        for step in range(steps):
            token.check()
            time.sleep(0.01)
            yield Progress("working", step + 1, steps, f"step {step + 1}")
        yield Finished("done")

    return factory

"""The Train page's "Processes" setting: a run on several processes (torchrun) from the window."""

from __future__ import annotations

from studio.engine.supervision.supervisor import train_arguments
from studio.ui.train import TrainPage
from tests.ui.test_train_page import configure, page  # noqa: F401 - the page fixture


def test_processes_share_the_threads_and_need_a_batch_they_can_split(page: TrainPage) -> None:  # noqa: F811
    configure(page, "p")
    setup = page.setup
    assert setup.processes_spin.value() == 1 and not setup.options().distributed  # one process by default
    setup.processes_spin.setMaximum(4)
    setup.threads_spin.setMaximum(8)
    setup.threads_spin.setValue(8)
    setup.processes_spin.setValue(4)
    options = setup.options()
    assert (options.nproc_per_node, options.threads, options.distributed) == (4, 2, True)
    assert train_arguments(options)[-7:-1] == ["--nproc-per-node", "4", "--nnodes", "1", "--node-rank", "0"]
    assert setup.problem() is None  # the tiny GAN's batch of 8 splits over 4
    setup.processes_spin.setValue(3)
    assert setup.problem() == "The batch size (8) must be a multiple of the 3 processes that share it."

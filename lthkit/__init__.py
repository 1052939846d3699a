"""lthkit: an interactive teaching kit for the Lottery Ticket Hypothesis.

Frankle & Carbin (2018), "The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural
Networks" (arXiv:1803.03635): dense networks contain sparse subnetworks ("winning tickets")
that, reset to their original initialization and trained alone, match the dense network.

The core runs headless and never imports plotting or widget code:

* :mod:`lthkit.fields`      the config fields' checks and the metadata the CLI's flags come from
* :mod:`lthkit.data`        MNIST into in-memory tensors, the paper's train/validation split
* :mod:`lthkit.models`      LeNet-300-100 and a small conv net, seeded
* :mod:`lthkit.masks`       magnitude and random pruning, densities, ``torch.nn.utils.prune`` interop
* :mod:`lthkit.train`       masked training with early-stopping records
* :mod:`lthkit.fastpath`    the optional performance layer under it (private torch APIs, one switch)
* :mod:`lthkit.branches`    what a round trains: the ticket and the controls, registered by name
* :mod:`lthkit.lottery`     iterative magnitude pruning with rewinding; the one driver of runs
* :mod:`lthkit.batched`     several independent runs trained at once as one batched model
* :mod:`lthkit.presets`     every named config (CLI, notebooks, dashboard), full and fast modes
* :mod:`lthkit.experiments` cached, resumable runs

On top of it: :mod:`lthkit.plots`, :mod:`lthkit.widgets`, :mod:`lthkit.grading` and the CLI
(``python -m lthkit --help``).
"""

__version__ = "0.1.0"


class LthkitError(ValueError):
    """A problem with the input to an lthkit function, described in one line.

    Raised for bad arguments, missing data or broken files. It subclasses :class:`ValueError`
    so that callers that already catch ``ValueError`` keep working.
    """

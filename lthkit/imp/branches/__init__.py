"""What one IMP round trains: the registered branches, one module per family.

A *branch* is a small function that, given what a run knows before a round (θ₀, the rewind
weights θ_k, the previous round's mask and trained weights, and the masks of the runs it depends
on), returns the round's starting network, its mask and the iteration it starts from. Each one is
a :class:`Branch` (its name, that function, its label and colour, what it needs) listed by its
family's module; :data:`BRANCHES` holds them all, in order. A name in it is what
:attr:`lthkit.imp.config.LotteryConfig.control` selects, and one driver
(:func:`lthkit.imp.driver.run_lotteries`) runs any mix of them, resolving what each one needs.

* :mod:`.base`: what a branch receives (:class:`RoundInputs`) and returns (:class:`RoundStart`);
* :mod:`.paper`: the winning ticket and Frankle & Carbin's two controls (§2);
* :mod:`.retraining`: fine-tuning, weight rewinding and learning-rate rewinding (Renda et al. 2020);
* :mod:`.twins`: the twins of instability analysis (Frankle et al. 2020);
* :mod:`.anatomy`: Zhou et al.'s resets and frozen zeros, and pruning at initialization.

Adding a branch is one function and one entry in its family's ``BRANCHES``; the config's check,
the command line's ``--control`` choices (for ``control=True``), the plots' labels and colours,
the summary reader and the dashboard all read :data:`BRANCHES`. A test or a notebook tries one of
its own for a block:

    >>> from lthkit.core.masks import full_masks
    >>> def dense_reinit(inputs):
    ...     model = inputs.model(seed=derive_seed(inputs.config.seed, "dense_reinit", inputs.round))
    ...     return RoundStart(model, full_masks(model))
    >>> with BRANCHES.temporarily(Branch("dense_reinit", dense_reinit, label="dense, re-initialized")):
    ...     get_branch("dense_reinit").label
    'dense, re-initialized'
"""

from . import anatomy, paper, retraining, twins
from .base import Branch, Branches, RoundInputs, RoundStart, derive_seed
from .paper import MAX_REINIT_DRAWS, PAPER_CONTROLS, reinit_draws
from .retraining import RETRAINING, final_rate_config
from .twins import TWINS, twin_seed

#: Every branch, family by family.
BRANCHES = Branches([*paper.BRANCHES, *retraining.BRANCHES, *twins.BRANCHES, *anatomy.BRANCHES])


def get_branch(name: str) -> Branch:
    """The branch registered as ``name``, or the pruning-at-init branch of a scorer registered since
    (:func:`.anatomy.pai_branch`: one new scorer entry gives its three branches).

    Raises:
        LthkitError: no such branch.
    """
    if name not in BRANCHES:
        branch = anatomy.pai_branch(name)
        if branch is not None:
            return branch
    return BRANCHES.require(name)


__all__ = ["BRANCHES", "Branch", "Branches", "MAX_REINIT_DRAWS", "PAPER_CONTROLS", "RETRAINING", "RoundInputs", "RoundStart", "TWINS",
           "derive_seed", "final_rate_config", "get_branch", "reinit_draws", "twin_seed"]

"""The modules a submission cannot use besides lthkit's own (:mod:`lthkit.grading.gate`), and their stubs.

For a kata done by hand, ``torch.nn.utils.prune`` is replaced inside the sandbox (a stub file bound
over the real one under bubblewrap, a stub module in ``sys.modules`` in both isolations) whose every
attribute raises ImportError with a message that starts with :data:`PRUNE_MESSAGE_START`; the kata's
judge recognizes it. This module imports nothing, so a kata's spec and the isolation both use it.
"""

#: Modules a submission cannot use besides lthkit's (:mod:`lthkit.grading.gate`): name → when hidden.
HIDDEN_MODULES = {"torch.nn.utils.prune": "by_hand"}

PRUNE_STUB = '''"""torch.nn.utils.prune inside the grading sandbox of a kata that is to be done by hand."""
MESSAGE = ("torch.nn.utils.prune is not available in this kata: compute the threshold by hand "
           "(torch.kthvalue or torch.topk over the surviving |w|)")


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise ImportError(MESSAGE, name="torch.nn.utils.prune")
'''
PRUNE_MESSAGE_START = "torch.nn.utils.prune is not available in this kata"
STUBS = {"torch.nn.utils.prune": PRUNE_STUB}

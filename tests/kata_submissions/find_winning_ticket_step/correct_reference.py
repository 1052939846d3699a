# The kit's reference solution, imported: it must pass every check.
from lthkit.kata import find_winning_ticket_step  # noqa: F401

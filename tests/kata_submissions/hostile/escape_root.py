# Issue 12, problem 1: escape as root. Makes a block device in its job folder and changes the
# metadata of a file of the grader's package (tests put a VICTIM file there). Reports what worked.
import os
import stat
from pathlib import Path

import lthkit


def attempts():
    victim = str(Path(lthkit.__file__).parent / "grading" / "VICTIM")
    tries = {
        "mknod": lambda: os.mknod("blk", stat.S_IFBLK | 0o600, os.makedev(7, 0)),
        "chmod": lambda: os.chmod(victim, 0),
        "chown": lambda: os.chown(victim, 12345, 12345),
        "utime": lambda: os.utime(victim, (0, 0)),
        "setxattr": lambda: os.setxattr(victim, "user.lthkit", b"pwned"),
    }
    results = {}
    for name, attempt in tries.items():
        try:
            attempt()
            results[name] = "yes"
        except OSError:
            results[name] = "no"
    return results


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    raise RuntimeError("escape: " + ", ".join(f"{key}={value}" for key, value in attempts().items()))

# Issue 12, problem 8: in a folder run, one submission read the others' code and inputs
# (glob("/tmp/lthkit-grade-*/input.pt")) and, as root, any process's descriptors. Looks for
# another sandbox's payload for a few seconds and reports what it found.
import glob
import os
import time


def holds_code(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # (a pipe would block)
    except OSError:
        return False
    try:
        return b"find_winning_ticket_step" in os.pread(fd, 2**22, 0)
    except OSError:
        return False
    finally:
        os.close(fd)


def others():
    paths = glob.glob("/tmp/lthkit-grade-*/*")
    paths += [path for path in glob.glob("/proc/[0-9]*/fd/*") if not path.startswith(f"/proc/{os.getpid()}/")]
    return {path for path in paths if holds_code(path)}


FOUND = {}


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    if not FOUND:  # the first of the hidden cases searches for 4 s, the others repeat its answer
        found, deadline = set(), time.monotonic() + 4
        while time.monotonic() < deadline and not found:
            found |= others()
            time.sleep(0.2)
        FOUND["paths"] = sorted(found)
    raise RuntimeError(f"cross reads: found={len(FOUND['paths'])} {FOUND['paths'][:3]}")

# Issue 12, problem 8: in a folder run, one submission read the others' code and inputs
# (glob("/tmp/lthkit-grade-*/input.pt")) and, as root, any process's descriptors. Looks for
# another sandbox's payload for a few seconds and reports what it found.
import glob
import os
import time


def others():
    found = set()
    for path in glob.glob("/tmp/lthkit-grade-*/*"):
        try:
            with open(path, "rb") as file:
                if b"find_winning_ticket_step" in file.read(2**22):
                    found.add(path)
        except OSError:
            pass
    for fd_path in glob.glob("/proc/[0-9]*/fd/*"):
        if fd_path.startswith(f"/proc/{os.getpid()}/"):
            continue
        try:
            with open(fd_path, "rb") as file:
                if b"find_winning_ticket_step" in file.read(2**22):
                    found.add(fd_path)
        except OSError:
            pass
    return found


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    found, deadline = set(), time.monotonic() + 5
    while time.monotonic() < deadline and not found:
        found |= others()
        time.sleep(0.2)
    raise RuntimeError(f"cross reads: found={len(found)} {sorted(found)[:3]}")

# status: graded
# Tries to reach outside the sandbox: write into the grader's package, signal the grader, read its
# memory, open a TCP connection. It reports what worked by raising; the grader must deny them all.
import os
import socket
from pathlib import Path

import lthkit


def attempts():
    results = {}
    try:
        (Path(lthkit.__file__).parent / "grading" / "TAMPERED").write_text("score = 10")
        results["write"] = "yes"
    except OSError:
        results["write"] = "no"
    try:
        os.kill(os.getppid(), 0)  # signal 0 only asks whether a signal would be allowed
        results["signal"] = "yes"
    except OSError:
        results["signal"] = "no"
    try:
        with open(f"/proc/{os.getppid()}/mem", "rb"):
            results["read"] = "yes"
    except OSError:
        results["read"] = "no"
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=1).close()
        results["tcp"] = "yes"
    except OSError as error:
        results["tcp"] = "no" if isinstance(error, PermissionError) else f"failed ({type(error).__name__})"
    return results


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    raise RuntimeError("escape attempts: " + ", ".join(f"{key}={value}" for key, value in attempts().items()))

# Issue 12, problem 6: fork -> setsid -> fork -> exec sleep escaped the process-group kill (and
# could read later learners' job folders). Reports whether the fork worked.
import os


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    try:
        pid = os.fork()
    except OSError as error:
        raise RuntimeError(f"orphan: fork=no ({type(error).__name__})")
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", "987654"])
        os._exit(0)
    os.waitpid(pid, 0)
    raise RuntimeError("orphan: fork=yes")

"""Run a submission in a separate process with a wall-clock timeout and a memory limit.

The grader (the *parent*) writes the hidden cases' inputs and the submission's code into a fresh
job folder and starts ``python -m lthkit.grading.sandbox JOB READY_FD`` (the *child*) in its own
session. The child imports torch and the kata (trusted code), then, before any submission code
runs:

* caps its address space at what it already uses plus ``Limits.memory_mb`` (``RLIMIT_AS``, set
  *after* ``import torch``: the CUDA build of torch reserves about 3 GiB of virtual address space
  at import, so a limit set before it would break the import; set afterwards it counts only what
  the submission allocates), its CPU time, the size of the files it writes, and core dumps;
* confines itself with Landlock where the kernel has it (writes only in the job folder, no TCP,
  no signals to the grader: see :mod:`lthkit.grading.landlock`);
* tells the parent it is ready; the parent's timeout counts from there, so a slow ``import
  torch`` on a loaded machine never eats the submission's time.

Then it runs the submission's definitions and calls the learner's function on every hidden case
through the kata's ``run``, and writes what it recorded (plain tensors, numbers, strings) to
``output.pt``. The parent loads that with ``torch.load(weights_only=True)``: no object the
submission made ever reaches the grader, and the grader's oracle, the expected results and the
score never reach the sandbox. A submission that hangs is killed (its whole process group) at the
timeout; one that crashes, exits, or runs out of memory is reported as such. Everything the child
prints goes to a log whose tail appears in error messages.

Example:
    >>> from lthkit.grading.katas import get_kata
    >>> from lthkit.grading.source import submission_from_text
    >>> kata = get_kata("find_winning_ticket_step")
    >>> outcome = run_in_sandbox(submission_from_text("def find_winning_ticket_step(m, s, a):\\n  while True: pass\\n",
    ...                          "hang.py"), kata, Limits(timeout=2))  # doctest: +SKIP
    >>> outcome.status  # doctest: +SKIP
    'timeout'
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: Largest ``output.pt`` the parent will read, and the child's cap on any file it writes.
MAX_OUTPUT_BYTES = 256 * 2**20
#: Environment variables passed on to the sandbox (everything else, tokens included, stays out).
PASSED_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "VIRTUAL_ENV", "PYTHONPATH")
#: Statuses of an :class:`Outcome`, besides "ok".
FAILURE_STATUSES = ("syntax", "import", "error", "missing", "timeout", "memory", "crash")
_ALLOCATION_FAILURES = ("can't allocate memory", "not enough memory", "DefaultCPUAllocator", "out of memory")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox run.

    Attributes:
        timeout: wall-clock seconds for the submission's own work (its definitions and every call),
            counted once the sandbox has started.
        memory_mb: memory the submission may allocate, in MiB, on top of the sandbox's own footprint
            (Python and torch).
        startup_timeout: seconds the sandbox may take to start (to import torch).
    """

    timeout: float = 20.0
    memory_mb: int = 2048
    startup_timeout: float = 180.0

    def __post_init__(self):
        from .. import LthkitError

        if not self.timeout > 0:
            raise LthkitError(f"timeout must be positive, got {self.timeout!r}")
        if not self.memory_mb >= 64:
            raise LthkitError(f"memory limit must be at least 64 MiB, got {self.memory_mb!r}")


@dataclass(frozen=True)
class Outcome:
    """What came back from one sandbox run.

    Attributes:
        status: ``"ok"`` (the cases ran; their own errors are in ``results``) or one of
            :data:`FAILURE_STATUSES`.
        message: for a failure, what happened, in one line.
        results: ``{"cases": [{"outputs": dict, "error": dict | None}], "isolation": str,
            "function_module": str}`` for ``"ok"``; None otherwise.
        seconds: wall time, start-up included.
        log_tail: the end of what the sandbox printed.
    """

    status: str
    message: str = ""
    results: dict | None = None
    seconds: float = 0.0
    log_tail: str = ""


# ------------------------------------------------------------------------------------ parent

def _environment(job: Path) -> dict[str, str]:
    package_root = str(Path(__file__).resolve().parents[2])
    environment = {key: os.environ[key] for key in PASSED_ENVIRONMENT if key in os.environ}
    environment.update({
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")])),
        # One thread each: several sandboxes share the cores, and thread pools cost address space.
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",
        "CUDA_VISIBLE_DEVICES": "", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1", "TMPDIR": str(job), "MPLCONFIGDIR": str(job / "matplotlib"), "MPLBACKEND": "Agg",
    })
    return environment


def _wait_readable(fds, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return []
        try:
            readable, _, _ = select.select(fds, [], [], left)
            return readable
        except InterruptedError:
            continue


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _log_tail(path: Path, limit: int = 2000) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - limit))
            return file.read().decode(errors="replace").strip()
    except OSError:
        return ""


def _signal_message(returncode: int, limits: Limits) -> tuple[str, str]:
    number = -returncode
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    if number == signal.SIGXCPU:
        return "timeout", f"used more CPU time than allowed ({limits.timeout:g} s)"
    if number == signal.SIGXFSZ:
        return "crash", f"wrote a file larger than {MAX_OUTPUT_BYTES // 2**20} MiB"
    if number == signal.SIGKILL:
        return "memory", "was killed (SIGKILL), most likely for using too much memory"
    return "crash", f"crashed ({name})"


def run_in_sandbox(submission, kata, limits: Limits = Limits(), inputs: list[dict] | None = None) -> Outcome:
    """Run ``submission`` on ``kata``'s hidden cases in a fresh sandbox process.

    Args:
        submission: a :class:`~lthkit.grading.source.Submission` without ``error``.
        kata: the :class:`~lthkit.grading.spec.KataSpec`.
        limits: timeout and memory limit.
        inputs: the cases' prepared inputs (default: ``kata.prepare`` of each case).

    Returns:
        An :class:`Outcome`. This function does not raise for anything the submission does.
    """
    import torch

    started = time.monotonic()
    inputs = [kata.prepare(case) for case in kata.cases] if inputs is None else inputs
    job = Path(tempfile.mkdtemp(prefix="lthkit-grade-"))
    try:
        torch.save({
            "kata": kata.name, "function": kata.function, "chunks": [list(chunk) for chunk in submission.chunks],
            "cases": [{"model": c.model, "seed": c.seed, "amount": c.amount, "variant": c.variant} for c in kata.cases],
            "inputs": inputs, "limits": {"timeout": limits.timeout, "memory_mb": limits.memory_mb},
        }, job / "input.pt")
        log_path = job / "log.txt"
        ready_read, ready_write = os.pipe()
        try:
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "lthkit.grading.sandbox", str(job), str(ready_write)],
                    cwd=job, env=_environment(job), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    pass_fds=(ready_write,), start_new_session=True)
        except (OSError, ValueError) as error:  # ValueError: no pass_fds on this platform
            os.close(ready_read)
            return Outcome("crash", f"could not start the sandbox: {error}", None, time.monotonic() - started)
        finally:
            os.close(ready_write)
        try:
            status, message = _supervise(process, ready_read, limits)
        finally:
            os.close(ready_read)
            _kill_group(process)
            process.wait()
        tail = _log_tail(log_path)
        if status:
            last = tail.splitlines()[-1][:200] if tail and "failed to start" in message else ""
            return Outcome(status, message + (f": {last}" if last else ""), None, time.monotonic() - started, tail)
        return _read_results(job, process.returncode, limits, time.monotonic() - started, tail, torch)
    finally:
        shutil.rmtree(job, ignore_errors=True)


def _supervise(process: subprocess.Popen, ready_read: int, limits: Limits) -> tuple[str, str]:
    """Wait for the child to start and to finish; kill it at the timeout. ``("", "")`` when it ended."""
    try:
        exited = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        exited = None
    try:
        watched = [ready_read] + ([exited] if exited is not None else [])
        readable = _wait_readable(watched, limits.startup_timeout)
        if not readable:
            _kill_group(process)
            return "crash", f"the sandbox did not start within {limits.startup_timeout:g} s"
        if ready_read not in readable or not os.read(ready_read, 16).startswith(b"ready"):
            process.wait()
            return "crash", f"the sandbox failed to start (exit status {process.returncode}); nothing was graded"
        if exited is not None:
            finished = bool(_wait_readable([exited], limits.timeout))
        else:
            try:
                process.wait(timeout=limits.timeout)
                finished = True
            except subprocess.TimeoutExpired:
                finished = False
        if not finished:
            _kill_group(process)
            return "timeout", (f"did not finish within {limits.timeout:g} s and was stopped (an endless loop, or "
                               "waiting for input?)")
        return "", ""
    finally:
        if exited is not None:
            os.close(exited)


def _read_results(job: Path, returncode: int, limits: Limits, seconds: float, tail: str, torch) -> Outcome:
    output = job / "output.pt"
    if not output.exists():
        if returncode is not None and returncode < 0:
            status, message = _signal_message(returncode, limits)
        else:
            status, message = "crash", (f"the sandbox exited (status {returncode}) before reporting: did the "
                                        "submission call exit() or os._exit()?")
        last = tail.splitlines()[-1] if tail else ""
        return Outcome(status, message + (f"; it printed: {last[:200]}" if last else ""), None, seconds, tail)
    try:
        if output.stat().st_size > MAX_OUTPUT_BYTES:
            raise ValueError(f"output is larger than {MAX_OUTPUT_BYTES // 2**20} MiB")
        results = torch.load(output, weights_only=True)
        if not isinstance(results, dict) or not isinstance(results.get("status"), str):
            raise ValueError("output is not a dict with a status")
    except Exception as error:  # noqa: BLE001 - whatever the file holds, the grader reports it
        return Outcome("crash", f"the sandbox's results could not be read ({type(error).__name__}: {error})"[:300],
                       None, seconds, tail)
    if results["status"] != "ok":
        status = results["status"] if results["status"] in FAILURE_STATUSES else "error"
        return Outcome(status, str(results.get("message", ""))[:500], None, seconds, tail)
    return Outcome("ok", "", results, seconds, tail)


# ------------------------------------------------------------------------------------- child

def _memory_in_use() -> int:
    """This process's current virtual size in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _set_limits(limits: dict) -> None:
    try:
        import resource
    except ImportError:  # not a POSIX system: only the parent's wall-clock timeout applies
        return

    def cap(kind, value):
        try:
            soft, hard = resource.getrlimit(kind)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            pass

    if sys.platform.startswith("linux"):
        cap(resource.RLIMIT_AS, _memory_in_use() + int(limits["memory_mb"]) * 2**20)
    cpu_seconds = int(limits["timeout"]) + 5
    cap(resource.RLIMIT_CPU, resource.getrusage(resource.RUSAGE_SELF).ru_utime.__ceil__() + cpu_seconds)
    cap(resource.RLIMIT_FSIZE, MAX_OUTPUT_BYTES)
    cap(resource.RLIMIT_CORE, 0)


class _SubmissionFailed(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def _safe_str(value, limit: int = 300) -> str:
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - a learner's exception may not print
        text = "<unprintable>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _where(error: BaseException, chunks: dict[str, str]) -> str:
    """`` (cell 4, line 7: `code`)`` for the deepest traceback frame in the submission's code."""
    frame_label, frame_line = None, None
    traceback = error.__traceback__
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if filename in chunks:
            frame_label, frame_line = filename, traceback.tb_lineno
        traceback = traceback.tb_next
    if frame_label is None:
        return ""
    lines = chunks[frame_label].splitlines()
    code = lines[frame_line - 1].strip() if 0 < frame_line <= len(lines) else ""
    return f" ({frame_label}, line {frame_line}" + (f": `{code[:120]}`)" if code else ")")


def _is_memory_error(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and any(text in _safe_str(error, 2000) for text in _ALLOCATION_FAILURES))


def _describe(error: BaseException, chunks: dict[str, str]) -> dict:
    return {"type": type(error).__name__[:80], "message": _safe_str(error), "where": _where(error, chunks),
            "memory": _is_memory_error(error)}


def _load_submission(chunks: list, function_name: str):
    """Run the submission's definitions in a fresh module; its function, or :class:`_SubmissionFailed`."""
    import types

    module = types.ModuleType("submission")
    sys.modules["submission"] = module
    sources = dict(chunks)
    for label, text in chunks:
        try:
            code = compile(text, label, "exec", dont_inherit=True)
        except SyntaxError as error:
            code_line = f": {error.text.strip()}" if error.text and error.text.strip() else ""
            raise _SubmissionFailed("syntax", f"SyntaxError in {label}, line {error.lineno}: {error.msg}{code_line}")
        except (ValueError, RecursionError, MemoryError) as error:
            raise _SubmissionFailed("syntax", f"{label} cannot be compiled: {_safe_str(error)}")
        try:
            exec(code, module.__dict__)
        except BaseException as error:  # noqa: BLE001 - SystemExit included: the learner's code is reported
            where = _where(error, sources)
            if isinstance(error, ImportError):
                raise _SubmissionFailed("import", f"{type(error).__name__}{where}: {_safe_str(error)}")
            if _is_memory_error(error):
                raise _SubmissionFailed("memory", f"ran out of memory while loading{where}")
            hint = ("; only imports, functions, classes and constant assignments of a submission run in the grader"
                    if isinstance(error, NameError) else "")
            raise _SubmissionFailed("error", f"the submission's code raised {type(error).__name__}{where}: "
                                             f"{_safe_str(error)}{hint}")
    function = module.__dict__.get(function_name)
    if not callable(function):
        defined = sorted(name for name, value in module.__dict__.items()
                         if callable(value) and getattr(value, "__module__", "") == "submission")
        found = f" (it defines {', '.join(defined[:8])})" if defined else ""
        what = "no" if function is None else f"a {type(function).__name__} named"
        raise _SubmissionFailed("missing", f"the submission defines {what} function {function_name}{found}")
    return function


def _install_call_recorders(names, log: list) -> None:
    """Replace each dotted-name function by a wrapper that notes the call, before any submission code runs."""
    import functools
    import importlib

    for dotted in names:
        module_name, attribute_name = dotted.rsplit(".", 1)
        module = importlib.import_module(module_name)
        original = getattr(module, attribute_name)

        def recorder(*args, _original=original, _dotted=dotted, **kwargs):
            log.append(_dotted)
            return _original(*args, **kwargs)

        setattr(module, attribute_name, functools.wraps(original)(recorder))


def _plain_tree(value, torch, depth: int = 0):
    """Only what ``torch.load(weights_only=True)`` accepts: containers, scalars, plain CPU tensors."""
    if depth > 12:
        return "<nested too deep>"
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is torch.Tensor and value.device.type == "cpu":
        return value
    if type(value) in (list, tuple):
        return [_plain_tree(item, torch, depth + 1) for item in value]
    if type(value) is dict:
        return {str(key): _plain_tree(item, torch, depth + 1) for key, item in value.items()}
    return f"<{type(value).__name__} object>"


def child_main(argv: list[str]) -> None:
    """Entry point of the sandbox process: ``python -m lthkit.grading.sandbox JOB READY_FD``."""
    job, ready_fd = Path(argv[0]), int(argv[1])
    import torch

    torch.set_num_threads(1)
    save = torch.save  # bound before the submission can replace it
    from .katas import get_kata
    from .landlock import confine
    from .spec import Case

    payload = torch.load(job / "input.pt", weights_only=True)
    kata = get_kata(payload["kata"])
    cases = [Case(**case) for case in payload["cases"]]
    chunks = [tuple(chunk) for chunk in payload["chunks"]]
    forbidden_log: list[str] = []
    _install_call_recorders(kata.forbidden_calls, forbidden_log)
    _set_limits(payload["limits"])
    try:
        isolation = confine([str(job)])
    except Exception as error:  # noqa: BLE001 - Landlock is best effort
        isolation = f"landlock unavailable: {type(error).__name__}: {error}"
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)

    results = {"status": "ok", "message": "", "isolation": isolation, "cases": [], "function_module": ""}
    try:
        function = _load_submission(chunks, payload["function"])
        results["function_module"] = _safe_str(getattr(function, "__module__", ""), 200)
        sources = dict(chunks)
        for case, inputs in zip(cases, payload["inputs"]):
            outputs: dict = {}
            forbidden_log.clear()
            error = None
            try:
                kata.run(function, case, inputs, outputs)
            except BaseException as raised:  # noqa: BLE001 - everything the learner's function does is reported
                error = _describe(raised, sources)
                if error["memory"]:
                    raise _SubmissionFailed("memory", f"ran out of memory on {case.label}{error['where']}: the "
                                                      f"sandbox allows {payload['limits']['memory_mb']} MiB") from None
            outputs["forbidden_calls"] = list(dict.fromkeys(forbidden_log))
            results["cases"].append({"outputs": _plain_tree(outputs, torch), "error": error})
    except _SubmissionFailed as failure:
        results.update(status=failure.status, message=str(failure), cases=[])
    temporary = job / "output.tmp"
    save(results, temporary)
    os.replace(temporary, job / "output.pt")
    sys.stdout.flush()
    os._exit(0)  # skip interpreter shutdown: a submission's atexit hooks and threads do not get a say


if __name__ == "__main__":
    child_main(sys.argv[1:])

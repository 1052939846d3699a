"""Run a submission in an isolated process with a wall-clock timeout and resource limits.

The grader (the *parent*) starts ``python -m lthkit.grading.sandbox JOB READY PAYLOAD SHARED
RESULTS`` (the *child*) in its own session, isolated as :mod:`lthkit.grading.isolation` says
(bubblewrap where it runs, else a dropped uid with Landlock and seccomp). Nothing the child
leaves in a folder is ever read back: it talks to the parent only through descriptors the parent
holds:

* ``PAYLOAD``: a sealed, read-only memfd with the kata, the code and the hidden cases' inputs;
* ``SHARED``: a memfd (size sealed) holding the inputs the learner's function must leave alone
  (θ₀, masks); the child's tensors *are* that memory, and the parent reads it back itself after
  the run, so what the function did to them is judged without trusting anything in the child;
* ``RESULTS``: a pipe the child writes its plain results to (read with a size cap), and its
  stdout/stderr go to another pipe of which the parent keeps only the tail;
* ``READY``: a pipe on which the child says it has started; the timeout counts from there, so a
  slow ``import torch`` on a loaded machine never eats the submission's time.

Before any submission code runs the child imports torch and the kata (trusted code), hides the
reference solutions (and ``torch.nn.utils.prune`` for a kata done by hand), and caps itself:
address space at what it uses plus ``Limits.memory_mb`` (``RLIMIT_AS``, set *after* ``import
torch``: the CUDA build of torch reserves about 3 GiB of virtual address space at import), CPU
time, the number of open files and each file's size (so that all it can hold open in files and
memfds stays within half the memory limit; under bubblewrap the whole job folder is also a tmpfs of
``Limits.disk_mb``), and no core dumps; then a seccomp filter allows no
new processes (threads only) and no sockets, so the memory limit holds for the whole submission.
(cgroup v2 is not used: see :func:`lthkit.grading.isolation.cgroup_v2_status`.)

The parent loads the results with ``torch.load(weights_only=True)`` after checking their size and
nesting: no object the submission made ever reaches the grader, and the grader's oracle, the
expected results and the score never reach the sandbox. At the timeout, or when the child ends,
every process it started is killed: the PID namespace (bubblewrap) or every process of its uid
(fallback as root). A submission that crashes, exits, or runs out of memory is reported as such.

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

import dataclasses
import fcntl
import io
import math
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

from .gate import REFERENCE_MESSAGE, sandbox_tree
from .isolation import (BUBBLEWRAP, FALLBACK, JOB_INSIDE, bubblewrap_command, choose_isolation, fresh_uid, hidden_for,
                        kill_uid, readable_by)

#: Largest results the parent will read from the sandbox.
MAX_OUTPUT_BYTES = 256 * 2**20
#: How much of what the sandbox prints the parent keeps (the tail).
LOG_TAIL_BYTES = 16_384
#: Deepest nesting and most items the parent accepts in the sandbox's results.
MAX_RESULT_DEPTH, MAX_RESULT_ITEMS = 24, 200_000
#: Environment variables passed on to the sandbox (everything else, tokens included, stays out).
PASSED_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "VIRTUAL_ENV", "PYTHONPATH")
#: Statuses of an :class:`Outcome`, besides "ok"; "setup" is a failure of the grader's own set-up, never the
#: submission's.
FAILURE_STATUSES = ("syntax", "import", "reference", "error", "missing", "timeout", "memory", "crash", "setup")
_ALLOCATION_FAILURES = ("can't allocate memory", "not enough memory", "DefaultCPUAllocator", "out of memory")
#: Seconds a guarded constant assignment (``LAYERS = tuple([...])``) may take before it is skipped.
GUARD_SECONDS = 2.0


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox run.

    Attributes:
        timeout: wall-clock seconds for the submission's own work (its definitions and every call),
            counted once the sandbox has started.
        memory_mb: memory the submission may allocate, in MiB, on top of the sandbox's own footprint
            (Python and torch).
        startup_timeout: seconds the sandbox may take to start (to import torch).
        disk_mb: what the submission may write, in MiB: the size of its job folder under bubblewrap,
            the largest file otherwise.
        isolation: ``"bubblewrap"`` to refuse to grade without it, ``"fallback"`` to force the
            fallback, ``""`` for the environment variable ``LTHKIT_GRADE_ISOLATION`` or else the
            best available.
    """

    timeout: float = 20.0
    memory_mb: int = 2048
    startup_timeout: float = 180.0
    disk_mb: int = 64
    isolation: str = ""

    def __post_init__(self):
        from ..errors import LthkitError

        if not self.timeout > 0:
            raise LthkitError(f"timeout must be positive, got {self.timeout!r}")
        if not self.memory_mb >= 64:
            raise LthkitError(f"memory limit must be at least 64 MiB, got {self.memory_mb!r}")
        if not self.disk_mb >= 1:
            raise LthkitError(f"disk limit must be at least 1 MiB, got {self.disk_mb!r}")
        if self.isolation not in ("", BUBBLEWRAP, FALLBACK):
            raise LthkitError(f"isolation must be {BUBBLEWRAP!r}, {FALLBACK!r} or '', got {self.isolation!r}")


@dataclass(frozen=True)
class Outcome:
    """What came back from one sandbox run.

    Attributes:
        status: ``"ok"`` (the cases ran; their own errors are in ``results``) or one of
            :data:`FAILURE_STATUSES`.
        message: for a failure, what happened, in one line.
        results: ``{"cases": [{"outputs": dict, "error": dict | None}], "isolation": str,
            "function_module": str, "notes": [str]}`` for ``"ok"``; None otherwise.
        seconds: wall time, start-up included.
        log_tail: the end of what the sandbox printed.
        watched: per case, the watched inputs (see ``KataSpec.watched_inputs``) as the parent read
            them back from the shared memory after the run; None when there are none.
        isolation: how the sandbox was isolated.
    """

    status: str
    message: str = ""
    results: dict | None = None
    seconds: float = 0.0
    log_tail: str = ""
    watched: list | None = None
    isolation: str = ""


# ------------------------------------------------------------------------------------ parent

def _environment(job: str, tree: Path) -> dict[str, str]:
    environment = {key: os.environ[key] for key in PASSED_ENVIRONMENT if key in os.environ}
    environment.update({
        # The sandbox's own copy of lthkit first (lthkit.grading.gate): the checkout is never imported.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tree), environment.get("PYTHONPATH")])),
        # One thread each: several sandboxes share the cores, and thread pools cost address space.
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",
        "CUDA_VISIBLE_DEVICES": "", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1", "HOME": job, "TMPDIR": job, "MPLCONFIGDIR": f"{job}/matplotlib", "MPLBACKEND": "Agg",
    })
    return environment


def _unreadable_environment(uid: int) -> str:
    """The first folder of the Python environment that ``uid`` cannot read ('' when it can read them all)."""
    import sysconfig

    folders = dict.fromkeys(path for key in ("stdlib", "platstdlib", "purelib", "platlib")
                            if (path := sysconfig.get_paths().get(key)) and os.path.isdir(path))
    unreadable = readable_by(uid, list(folders))
    return unreadable[0] if unreadable else ""


def _memfd(name: str, data: bytes, read_only: bool) -> int:
    """A memfd holding ``data``, sealed against resizing (and against writes when ``read_only``);
    an unlinked temporary file where there are no memfds (not Linux)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    else:
        fd, path = tempfile.mkstemp(prefix=f"{name}-")
        os.unlink(path)
    view, written = memoryview(data), 0
    while written < len(data):
        written += os.write(fd, view[written:])
    if hasattr(fcntl, "F_ADD_SEALS") and hasattr(os, "memfd_create"):
        seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL | (fcntl.F_SEAL_WRITE if read_only else 0)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _tensor_bytes(tensor) -> bytes:
    return tensor.detach().contiguous().reshape(-1).view(__import__("torch").uint8).numpy().tobytes()


def shared_layout(inputs: list[dict], keys) -> tuple[list, int]:
    """Where each watched tensor lives in the shared memory: ``[(case, key, name, offset, dtype, shape)]``."""
    layout, offset = [], 0
    for index, case_inputs in enumerate(inputs):
        for key in keys:
            for name, tensor in case_inputs.get(key, {}).items():
                offset = -(-offset // 64) * 64  # aligned for every dtype
                layout.append((index, key, name, offset, str(tensor.dtype).removeprefix("torch."),
                               list(tensor.shape)))
                offset += tensor.numel() * tensor.element_size()
    return layout, offset


def _shared_memory(inputs: list[dict], keys) -> tuple[int, list]:
    layout, size = shared_layout(inputs, keys)
    buffer = bytearray(max(size, 1))
    for index, key, name, offset, _, _ in layout:
        data = _tensor_bytes(inputs[index][key][name])
        buffer[offset:offset + len(data)] = data
    return _memfd("lthkit-shared", bytes(buffer), read_only=False), layout


def _entry_bytes(dtype, shape, torch) -> int:
    """Bytes of one watched tensor of ``dtype`` and ``shape`` in the shared memory."""
    return math.prod(shape) * torch.empty((), dtype=dtype).element_size()


def _read_shared(fd: int, layout: list, count: int, torch) -> list[dict]:
    """The watched inputs as the parent reads them back from the shared memory."""
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0)
    watched = [{} for _ in range(count)]
    for index, key, name, offset, dtype, shape in layout:
        dtype = getattr(torch, dtype)
        nbytes = _entry_bytes(dtype, shape, torch)
        raw = torch.frombuffer(bytearray(data[offset:offset + nbytes]), dtype=torch.uint8) if nbytes else \
            torch.empty(0, dtype=torch.uint8)
        watched[index].setdefault(key, {})[name] = raw.view(dtype).reshape(shape).clone()
    return watched


class _Streams:
    """The child's stdout/stderr (only the tail is kept) and its results (up to a cap), read as they come."""

    def __init__(self, log_fd: int, results_fd: int):
        self.open = {log_fd: "log", results_fd: "results"}
        for fd in self.open:
            os.set_blocking(fd, False)
        self.log, self.results, self.too_large = bytearray(), bytearray(), False

    def fds(self) -> list[int]:
        return list(self.open)

    def service(self, readable) -> None:
        for fd in [fd for fd in readable if fd in self.open]:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self._close(fd)
            elif self.open[fd] == "log":
                self.log += chunk
                del self.log[:-LOG_TAIL_BYTES]
            else:
                self.results += chunk
                if len(self.results) > MAX_OUTPUT_BYTES:
                    self.too_large = True
                    self.results.clear()
                    self._close(fd)

    def _close(self, fd: int) -> None:
        self.open.pop(fd, None)
        os.close(fd)

    def drain(self, seconds: float) -> None:
        """Read what is left, until both pipes are closed or ``seconds`` passed."""
        deadline = time.monotonic() + seconds
        while self.open and time.monotonic() < deadline:
            try:
                readable, _, _ = select.select(self.fds(), [], [], max(0.0, deadline - time.monotonic()))
            except InterruptedError:
                continue
            if not readable:
                break
            self.service(readable)

    def close(self) -> None:
        for fd in list(self.open):
            self._close(fd)

    def tail(self) -> str:
        return bytes(self.log[-2000:]).decode(errors="replace").strip()


def _wait_readable(fds, timeout: float, streams: _Streams | None = None) -> list:
    """Wait until one of ``fds`` is readable (servicing ``streams`` meanwhile); [] at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return []
        watched = list(fds) + (streams.fds() if streams else [])
        try:
            readable, _, _ = select.select(watched, [], [], left)
        except InterruptedError:
            continue
        if streams:
            streams.service(readable)
        wanted = [fd for fd in readable if fd in fds]
        if wanted:
            return wanted


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_message(returncode: int, limits: Limits) -> tuple[str, str]:
    number = -returncode
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    if number == signal.SIGXCPU:
        return "timeout", f"used more CPU time than allowed ({limits.timeout:g} s)"
    if number == signal.SIGXFSZ:
        return "crash", f"wrote a file larger than the {limits.disk_mb} MiB allowed"
    if number == signal.SIGKILL:
        return "memory", "was killed (SIGKILL), most likely for using too much memory"
    return "crash", f"crashed ({name})"


def run_in_sandbox(submission, kata, limits: Limits = Limits(), inputs: list[dict] | None = None) -> Outcome:
    """Run ``submission`` on ``kata``'s hidden cases in a fresh sandbox process.

    Args:
        submission: a :class:`~lthkit.grading.source.Submission` without ``error``.
        kata: the :class:`~lthkit.grading.spec.KataSpec`.
        limits: timeout, memory and disk limits, and the isolation wanted.
        inputs: the cases' prepared inputs (default: ``kata.prepare`` of each case).

    Returns:
        An :class:`Outcome`. This function does not raise for anything the submission does.

    Raises:
        LthkitError: ``limits.isolation`` asks for bubblewrap and it cannot run here.
    """
    import torch

    started = time.monotonic()
    isolation = choose_isolation(limits.isolation)
    tree = sandbox_tree()  # LthkitError: nowhere every uid can read it
    uid = fresh_uid() if isolation.mode == FALLBACK or isolation.drop_outside else None
    inputs = [kata.prepare(case) for case in kata.cases] if inputs is None else inputs
    watched_keys = tuple(kata.watched_inputs)
    sent = [{key: value for key, value in case_inputs.items() if key not in watched_keys} for case_inputs in inputs]
    shared_fd, layout = _shared_memory(inputs, watched_keys)
    buffer = io.BytesIO()
    torch.save({
        "kata": kata.name, "function": kata.function, "chunks": [list(chunk) for chunk in submission.chunks],
        "guarded": list(submission.guarded),
        "cases": [{"model": c.model, "seed": c.seed, "amount": c.amount, "variant": c.variant} for c in kata.cases],
        "inputs": sent, "limits": {"timeout": limits.timeout, "memory_mb": limits.memory_mb, "disk_mb": limits.disk_mb},
        "hidden": hidden_for(kata.by_hand), "isolation": isolation.describe(), "shared": layout,
        "drop_to": uid if isolation.mode == FALLBACK else None,
        # In the fallback as root: a Python environment the fresh uid cannot read (imports after the drop fail).
        "unreadable": _unreadable_environment(uid) if isolation.mode == FALLBACK and uid is not None else "",
    }, buffer)
    job_host = None
    descriptors: list[int] = [shared_fd]
    try:
        payload_fd = _memfd("lthkit-payload", buffer.getvalue(), read_only=True)
        descriptors.append(payload_fd)
        if isolation.mode == BUBBLEWRAP:
            job = JOB_INSIDE
        else:
            job_host = tempfile.mkdtemp(prefix="lthkit-grade-")  # mode 0700
            if uid is not None:
                os.chown(job_host, uid, uid)
            job = job_host
        ready_read, ready_write = os.pipe()
        log_read, log_write = os.pipe()
        results_read, results_write = os.pipe()
        descriptors += [ready_read, ready_write, log_write, results_write]
        streams = _Streams(log_read, results_read)
        child = [sys.executable, "-m", "lthkit.grading.sandbox", job, str(ready_write), str(payload_fd),
                 str(shared_fd), str(results_write)]
        command = bubblewrap_command(child, limits.disk_mb * 2**20, hidden_for(kata.by_hand), tree) \
            if isolation.mode == BUBBLEWRAP else child
        # bwrap starts as the fresh uid; the fallback's child takes it after its trusted imports.
        as_user = {"user": uid, "group": uid, "extra_groups": []} if uid is not None and isolation.drop_outside \
            else {}
        try:
            process = subprocess.Popen(
                command, cwd=job_host or "/", env=_environment(job, tree), stdin=subprocess.DEVNULL, stdout=log_write,
                stderr=log_write, pass_fds=(ready_write, payload_fd, shared_fd, results_write),
                start_new_session=True, **as_user)
        except (OSError, ValueError, subprocess.SubprocessError) as error:
            streams.close()
            return Outcome("setup", f"the grader could not start the sandbox: {error}", None,
                           time.monotonic() - started, isolation=isolation.describe())
        for fd in (ready_write, log_write, results_write, payload_fd):
            os.close(fd)
            descriptors.remove(fd)
        try:
            status, message = _supervise(process, ready_read, limits, streams)
        finally:
            _kill_group(process)
            process.wait()
            if uid is not None:
                kill_uid(uid)  # whatever escaped the process group (setsid) or outlived the namespace
            streams.drain(2.0)
            streams.close()
        tail = streams.tail()
        seconds = time.monotonic() - started
        if status:
            last = tail.splitlines()[-1][:200] if tail and status == "setup" else ""
            return Outcome(status, message + (f": {last}" if last else ""), None, seconds, tail,
                           isolation=isolation.describe())
        returncode = process.returncode
        if isolation.mode == BUBBLEWRAP and returncode is not None and returncode > 128:
            returncode = -(returncode - 128)  # bwrap reports a signal as 128 + its number
        if streams.too_large:
            return Outcome("crash", f"the sandbox's results are larger than {MAX_OUTPUT_BYTES // 2**20} MiB", None,
                           seconds, tail, isolation=isolation.describe())
        outcome = _read_results(bytes(streams.results), returncode, limits, seconds, tail, torch)
        watched = _read_shared(shared_fd, layout, len(inputs), torch) if watched_keys else None
        return dataclasses.replace(outcome, watched=watched, isolation=isolation.describe())
    except Exception as error:  # noqa: BLE001 - the grader's own failure: reported, never the learner's
        return Outcome("setup", f"the grader could not run the sandbox ({type(error).__name__}: {error})"[:300],
                       None, time.monotonic() - started, isolation=isolation.describe())
    finally:
        for fd in descriptors:
            try:
                os.close(fd)
            except OSError:
                pass
        if job_host is not None:
            shutil.rmtree(job_host, ignore_errors=True)


def _supervise(process: subprocess.Popen, ready_read: int, limits: Limits,
               streams: _Streams | None = None) -> tuple[str, str]:
    """Wait for the child to start and to finish; kill it at the timeout. ``("", "")`` when it ended."""
    try:
        exited = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        exited = None
    try:
        watched = [ready_read] + ([exited] if exited is not None else [])
        readable = _wait_readable(watched, limits.startup_timeout, streams)
        if not readable:
            _kill_group(process)
            return "setup", (f"the sandbox did not start within {limits.startup_timeout:g} s (the grader's set-up, "
                             "not the submission: nothing was graded)")
        if ready_read not in readable or not os.read(ready_read, 16).startswith(b"ready"):
            _wait_readable([exited] if exited is not None else [], 5.0, streams)
            process.wait()
            return "setup", (f"the sandbox failed to start (exit status {process.returncode}): the grader's set-up, "
                             "not the submission; nothing was graded")
        if exited is not None:
            finished = bool(_wait_readable([exited], limits.timeout, streams))
        else:
            deadline = time.monotonic() + limits.timeout
            while process.poll() is None and time.monotonic() < deadline:
                _wait_readable([], 0.05, streams)
            finished = process.poll() is not None
        if not finished:
            _kill_group(process)
            return "timeout", (f"did not finish within {limits.timeout:g} s and was stopped (an endless loop, or "
                               "waiting for input?)")
        return "", ""
    finally:
        if exited is not None:
            os.close(exited)


def check_tree(value, max_depth: int = MAX_RESULT_DEPTH, max_items: int = MAX_RESULT_ITEMS) -> None:
    """Raise ValueError unless ``value`` is plain (containers, scalars, tensors), at most ``max_depth``
    deep with at most ``max_items`` items; iterative, so no nesting can exhaust the stack."""
    import torch

    stack, items = [(value, 0)], 0
    while stack:
        node, depth = stack.pop()
        items += 1
        if items > max_items:
            raise ValueError(f"more than {max_items:,} items")
        if depth > max_depth:
            raise ValueError(f"nested more than {max_depth} deep")
        if node is None or type(node) in (bool, int, float, str) or type(node) is torch.Tensor:
            continue
        if type(node) in (list, tuple):
            stack.extend((item, depth + 1) for item in node)
        elif type(node) is dict:
            stack.extend((item, depth + 1) for pair in node.items() for item in pair)
        else:
            raise ValueError(f"holds a {type(node).__name__}")


def _read_results(data: bytes, returncode: int, limits: Limits, seconds: float, tail: str, torch) -> Outcome:
    if not data:
        if returncode is not None and returncode < 0:
            status, message = _signal_message(returncode, limits)
        else:
            status, message = "crash", (f"the sandbox exited (status {returncode}) before reporting: did the "
                                        "submission call exit() or os._exit()?")
        last = tail.splitlines()[-1] if tail else ""
        return Outcome(status, message + (f"; it printed: {last[:200]}" if last else ""), None, seconds, tail)
    try:
        results = torch.load(io.BytesIO(data), weights_only=True)
        check_tree(results)
        if not isinstance(results, dict) or not isinstance(results.get("status"), str):
            raise ValueError("output is not a dict with a status")
    except BaseException as error:  # noqa: BLE001 - whatever the pipe held, the grader reports it
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        return Outcome("crash", f"the sandbox's results could not be read ({type(error).__name__}: "
                                f"{str(error)[:200]})", None, seconds, tail)
    if results["status"] != "ok":
        status = results["status"] if results["status"] in FAILURE_STATUSES else "error"
        message = results.get("message")
        return Outcome(status, message[:500] if isinstance(message, str) else "", None, seconds, tail)
    return Outcome("ok", "", results, seconds, tail)


# ------------------------------------------------------------------------------------- child

def _memory_in_use() -> int:
    """This process's current virtual size in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _set_limits(limits: dict) -> str:
    """Cap this process before submission code runs; what was capped, for the report."""
    try:
        import resource
    except ImportError:  # not a POSIX system: only the parent's wall-clock timeout applies
        return "no rlimits on this system"

    def cap(kind, value):
        try:
            soft, hard = resource.getrlimit(kind)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(kind, (value, value))
            return True
        except (ValueError, OSError):
            return False

    if sys.platform.startswith("linux"):
        cap(resource.RLIMIT_AS, _memory_in_use() + int(limits["memory_mb"]) * 2**20)
    cpu_seconds = int(limits["timeout"]) + 5
    cap(resource.RLIMIT_CPU, resource.getrusage(resource.RUSAGE_SELF).ru_utime.__ceil__() + cpu_seconds)
    # Few free descriptors, and every file (memfds included) small enough that all the files the
    # submission can hold open stay within half its memory limit: memory outside its address space.
    try:
        open_now = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except (OSError, ValueError):
        open_now = list(range(64))
    descriptors = max(open_now) + 3
    free = max(1, descriptors - len(open_now) + 1)
    file_mb = max(1, min(int(limits["disk_mb"]), int(limits["memory_mb"]) // (2 * free)))
    cap(resource.RLIMIT_NOFILE, descriptors)
    cap(resource.RLIMIT_FSIZE, file_mb * 2**20)
    cap(resource.RLIMIT_CORE, 0)
    # (No RLIMIT_NPROC: it counts threads too, and torch needs one now and then; the seccomp
    # filter forbids new processes instead, so this address space is the whole submission's.)
    return (f"rlimits: {limits['memory_mb']} MiB of memory, {file_mb} MiB per file, {free} free descriptors")


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


class _GuardTimeout(BaseException):
    pass


def _merged_sources(chunks) -> dict[str, str]:
    from .source import merge_sources

    by_label: dict[str, list[str]] = {}
    for label, text in chunks:
        by_label.setdefault(label, []).append(text)
    return {label: merge_sources(texts) for label, texts in by_label.items()}


def _is_reference_import(error: BaseException) -> bool:
    return isinstance(error, ImportError) and REFERENCE_MESSAGE in _safe_str(error, 2000)


def _run_guarded(code, namespace: dict, label: str, text: str, notes: list) -> None:
    """Run one guarded constant assignment; a failure or a slow one is skipped with a note."""
    def expire(signum, frame):
        raise _GuardTimeout()

    line = next((number for number, row in enumerate(text.split("\n"), 1) if row.strip()), 0)
    shown = text.split("\n")[line - 1].strip()[:60] if line else ""
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, GUARD_SECONDS)
    try:
        exec(code, namespace)
    except _GuardTimeout:
        notes.append(f"{label}, line {line}: skipped `{shown}`: it took more than {GUARD_SECONDS:g} s")
    except BaseException as error:  # noqa: BLE001 - a guarded constant that fails is skipped, not fatal
        if _is_reference_import(error):
            raise
        notes.append(f"{label}, line {line}: skipped `{shown}`: it raised {type(error).__name__}: "
                     f"{_safe_str(error, 120)}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


#: Appended to a submission's ImportError when the fallback's uid cannot read the Python environment.
_UNREADABLE_NOTE = (" (the grader's set-up may be the cause: its Python environment {} is readable by root only, so "
                    "the sandbox's unprivileged user can import only the modules loaded before it took over; the "
                    "instructor can install bubblewrap, or make the environment readable by all)")


def _load_submission(chunks: list, function_name: str, guarded=(), notes: list | None = None, unreadable: str = ""):
    """Run the submission's definitions in a fresh module; its function, or :class:`_SubmissionFailed`."""
    import types

    notes = [] if notes is None else notes
    module = types.ModuleType("submission")
    sys.modules["submission"] = module
    sources = _merged_sources(chunks)
    for index, (label, text) in enumerate(chunks):
        try:
            code = compile(text, label, "exec", dont_inherit=True)
        except SyntaxError as error:
            code_line = f": {error.text.strip()}" if error.text and error.text.strip() else ""
            raise _SubmissionFailed("syntax", f"SyntaxError in {label}, line {error.lineno}: {error.msg}{code_line}")
        except (ValueError, RecursionError, MemoryError) as error:
            raise _SubmissionFailed("syntax", f"{label} cannot be compiled: {_safe_str(error)}")
        try:
            if index in guarded:
                _run_guarded(code, module.__dict__, label, text, notes)
            else:
                exec(code, module.__dict__)
        except BaseException as error:  # noqa: BLE001 - SystemExit included: the learner's code is reported
            where = _where(error, sources)
            if _is_reference_import(error):
                raise _SubmissionFailed("reference", f"uses {getattr(error, 'name', None) or 'lthkit'}{where}: "
                                                     f"{REFERENCE_MESSAGE}")
            if isinstance(error, ImportError):
                raise _SubmissionFailed("import", f"{type(error).__name__}{where}: {_safe_str(error)}"
                                                  f"{_UNREADABLE_NOTE.format(unreadable) if unreadable else ''}")
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


#: Imported before the fallback drops root: the Python environment may be readable only by root.
PRELOADED = ("resource", "numpy", "math", "copy", "collections", "itertools", "functools", "operator", "random",
             "typing", "dataclasses", "re", "heapq", "bisect", "statistics", "encodings.idna", "encodings.ascii",
             "encodings.latin_1", "socket", "traceback", "inspect", "warnings", "torch.nn.functional",
             "torch.nn.init", "torch.nn.utils.parametrize", "torch.nn.utils.prune", "lthkit.core.masks", "lthkit.core.models")


def _preload() -> None:
    import importlib

    for name in PRELOADED:
        if sys.modules.get(name, True) is None or name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a module that does not import is the submission's ImportError later
            pass


def _shared_inputs(fd: int, layout: list, inputs: list[dict], torch) -> object:
    """Put the watched inputs in place as tensors *on* the shared memory the parent reads back."""
    import mmap

    size = os.fstat(fd).st_size
    memory = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)
    for index, key, name, offset, dtype, shape in layout:
        dtype = getattr(torch, dtype)
        nbytes = _entry_bytes(dtype, shape, torch)
        raw = torch.frombuffer(memory, dtype=torch.uint8, count=nbytes, offset=offset) if nbytes else \
            torch.empty(0, dtype=torch.uint8)
        inputs[index].setdefault(key, {})[name] = raw.view(dtype).view(shape)
    return memory  # kept alive by the caller


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
    """Entry point of the sandbox process: ``python -m lthkit.grading.sandbox JOB READY PAYLOAD SHARED RESULTS``."""
    job, ready_fd, payload_fd, shared_fd, results_fd = argv[0], *map(int, argv[1:5])
    import importlib

    import torch

    torch.set_num_threads(1)
    save = torch.save  # bound before the submission can replace it
    from . import gate
    from .isolation import drop_privileges, hide_modules, no_new_privileges, restrict_syscalls
    from .katas import run_module
    from .landlock import confine
    from .source import merge_sources  # noqa: F401 - imported now: after the fallback's drop it may be unreadable
    from .spec import Case

    gate.install_gate()  # every lthkit module outside the sandbox's copy is a tripwire from here on
    with os.fdopen(payload_fd, "rb") as payload_file:
        payload = torch.load(payload_file, weights_only=True)
    hide_modules(payload["hidden"])  # before the kata's own imports: they get the stubs too
    run = importlib.import_module(run_module(payload["kata"])).run
    cases = [Case(**case) for case in payload["cases"]]
    chunks = [tuple(chunk) for chunk in payload["chunks"]]
    inputs = payload["inputs"]
    memory = _shared_inputs(shared_fd, payload["shared"], inputs, torch)
    if payload.get("drop_to") is not None:
        _preload()
        drop_privileges(int(payload["drop_to"]))
    parts = [payload["isolation"], _set_limits(payload["limits"])]
    no_new_privileges()
    try:
        parts.append(confine([job]))
    except Exception as error:  # noqa: BLE001 - Landlock is best effort
        parts.append(f"landlock unavailable: {type(error).__name__}: {error}")
    parts.append(restrict_syscalls())
    isolation = "; ".join(parts)
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)

    notes: list[str] = []
    results = {"status": "ok", "message": "", "isolation": isolation, "cases": [], "function_module": "",
               "notes": notes}
    try:
        function = _load_submission(chunks, payload["function"], set(payload.get("guarded", [])), notes,
                                    payload.get("unreadable", ""))
        results["function_module"] = _safe_str(getattr(function, "__module__", ""), 200)
        sources = _merged_sources(chunks)
        for case, case_inputs in zip(cases, inputs):
            outputs: dict = {}
            error = None
            try:
                run(function, case, case_inputs, outputs)
            except BaseException as raised:  # noqa: BLE001 - everything the learner's function does is reported
                error = _describe(raised, sources)
                if error["memory"]:
                    raise _SubmissionFailed("memory", f"ran out of memory on {case.label}{error['where']}: the "
                                                      f"sandbox allows {payload['limits']['memory_mb']} MiB") from None
            results["cases"].append({"outputs": _plain_tree(outputs, torch), "error": error})
    except _SubmissionFailed as failure:
        results.update(status=failure.status, message=str(failure), cases=[])
    except Exception as failure:  # noqa: BLE001 - the harness's own code failed: the grader's set-up, not the learner
        results.update(status="setup", cases=[], message=f"the grader's sandbox failed ({type(failure).__name__}: "
                                                         f"{_safe_str(failure, 200)}): nothing was graded")
    if gate.TRIPPED:  # whatever the submission did with the ImportError, it reached for the library
        results.update(status="reference", cases=[], message=f"calls {gate.TRIPPED[0]}: {REFERENCE_MESSAGE}")
    buffer = io.BytesIO()
    save(results, buffer)
    data, written = memoryview(buffer.getvalue()), 0
    while written < len(data):
        written += os.write(results_fd, data[written:])
    del memory
    sys.stdout.flush()
    os._exit(0)  # skip interpreter shutdown: a submission's atexit hooks and threads do not get a say

if __name__ == "__main__":
    child_main(sys.argv[1:])

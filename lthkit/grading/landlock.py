"""Best-effort Linux Landlock confinement for the grading sandbox's child process.

Landlock (Linux 5.13+) lets an unprivileged process give up rights for itself and its children,
irreversibly. The grader's child process calls :func:`confine` after its own trusted imports and
before it runs a learner's code, so that code

* can write files only under the sandbox's job folder (it can still *read* the file system:
  Python, torch and the learner's imports need that);
* cannot open TCP connections or listen (Landlock ABI 4+);
* cannot signal, or connect to abstract unix sockets of, processes outside the sandbox
  (ABI 6+): it cannot kill the grader, nor ``ptrace`` it or read its memory through
  ``/proc/PID/mem`` (Landlock forbids that for every ABI).

Everything is optional: on a kernel without Landlock (or in a container whose seccomp filter hides
it) :func:`confine` changes nothing and says so, and the sandbox still has its separate process,
wall-clock timeout and memory limit. It is a safety net for honest mistakes and casual tampering,
not a jail for a determined attacker (UDP, for one, stays open).

Example:
    >>> status = confine(["/tmp/job"])  # doctest: +SKIP
    >>> status.startswith("landlock")     # doctest: +SKIP
    True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# Syscall numbers of landlock_create_ruleset / add_rule / restrict_self: the same in the unified
# syscall table of every architecture that has Landlock.
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# File-system rights that change the file system (reading and executing stay allowed everywhere).
_WRITE_FILE, _REMOVE_DIR, _REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_MAKE_CHAR, _MAKE_DIR, _MAKE_REG, _MAKE_SOCK, _MAKE_FIFO, _MAKE_BLOCK, _MAKE_SYM = (1 << bit for bit in range(6, 13))
_REFER, _TRUNCATE = 1 << 13, 1 << 14  # ABI 2 and ABI 3
_WRITES_ABI1 = (_WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE_CHAR | _MAKE_DIR | _MAKE_REG | _MAKE_SOCK
                | _MAKE_FIFO | _MAKE_BLOCK | _MAKE_SYM)
_FILE_RIGHTS = _WRITE_FILE | _TRUNCATE  # the rights that make sense on a single file (/dev/null)
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel's struct is __attribute__((packed)): 12 bytes
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version, or 0 when Landlock is not available here."""
    if platform.system() != "Linux":
        return 0
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def confine(writable_dirs) -> str:
    """Restrict this process (and its future children) to writing under ``writable_dirs`` only.

    Args:
        writable_dirs: folders where files may still be created, written and removed.

    Returns:
        A one-line description of what was enforced, e.g. ``"landlock ABI 7: writes only under
        the job folder, no TCP, no signals or abstract sockets outside the sandbox"``, or
        ``"landlock unavailable: ..."`` when nothing could be enforced.
    """
    version = abi_version()
    if version < 1:
        return "landlock unavailable on this kernel (only the process, timeout and memory limits apply)"
    libc = _libc()
    handled_fs = _WRITES_ABI1 | (_REFER if version >= 2 else 0) | (_TRUNCATE if version >= 3 else 0)
    attr = _RulesetAttr(handled_access_fs=handled_fs,
                        handled_access_net=(_NET_BIND_TCP | _NET_CONNECT_TCP) if version >= 4 else 0,
                        scoped=(_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if version >= 6 else 0)
    # Older kernels reject a struct larger than they know: pass only the fields of this ABI.
    size = 8 if version < 4 else 16 if version < 6 else 24
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"landlock unavailable: create_ruleset failed ({os.strerror(ctypes.get_errno())})"
    try:
        rules = [(path, handled_fs) for path in writable_dirs]
        rules.append(("/dev/null", _FILE_RIGHTS & handled_fs))
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
                if libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                                ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                    return f"landlock unavailable: add_rule({path}) failed ({os.strerror(ctypes.get_errno())})"
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0:
            return f"landlock unavailable: no_new_privs failed ({os.strerror(ctypes.get_errno())})"
        if libc.syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            return f"landlock unavailable: restrict_self failed ({os.strerror(ctypes.get_errno())})"
    finally:
        os.close(ruleset)
    enforced = ["writes only under the job folder"]
    if version >= 4:
        enforced.append("no TCP")
    if version >= 6:
        enforced.append("no signals or abstract sockets outside the sandbox")
    return f"landlock ABI {version}: " + ", ".join(enforced)

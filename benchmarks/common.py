"""What the benchmarks share: the machine's description and load, timers that wait for the device,
peak memory per phase, and the matrix-multiply throughput that the FLOP bound divides by.

Imported by the scripts in this folder (``python benchmarks/<script>.py`` puts it on the path).
"""

from __future__ import annotations

import re
import resource
import sys
import time
from contextlib import contextmanager

import torch

from lthkit.reporting.provenance import hardware_description

#: Square sizes whose float32 product defines the machine's matrix-multiply throughput.
GEMM_SIZES = {"cpu": (1024, 2048, 4096), "cuda": (4096, 8192)}

#: ``--smoke``'s help, the same in every script (those that do not import this module spell it out).
SMOKE_HELP = ("tiny sizes (a few hundred images, tens of iterations, one repeat): every section runs and prints "
              "in seconds, to check that the script still works (tests/test_benchmarks.py); its numbers mean nothing")


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages (``/proc/loadavg``), or ``"n/a"``."""
    try:
        with open("/proc/loadavg") as file:
            return " ".join(file.read().split()[:3])
    except OSError:
        return "n/a"


def describe_machine(device: str) -> str:
    """One line: CPU (or GPU), cores, torch and its thread count, and the load now."""
    info = hardware_description(device)
    parts = [info.get("gpu") or info.get("cpu", "unknown CPU"), f"{info['cpu_count']} cores",
             f"torch {info['torch']}", f"{torch.get_num_threads()} threads", f"device {device}"]
    return ", ".join(parts) + f"; load average {load_average()}"


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@contextmanager
def timed(device, into: list):
    """Append the wall seconds of the block to ``into``, waiting for the device at both ends."""
    synchronize(device)
    began = time.perf_counter()
    try:
        yield
    finally:
        synchronize(device)
        into.append(time.perf_counter() - began)


def _rss_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as file:
            match = re.search(rf"^{field}:\s+(\d+) kB", file.read(), re.MULTILINE)
        return int(match.group(1)) if match else None
    except OSError:
        return None


class PeakMemory:
    """Peak memory of one phase: resident set size on a CPU, allocated tensors on a GPU.

    On Linux the process's RSS high-water mark is reset at the start of the phase (writing 5 to
    ``/proc/self/clear_refs``), so the peak belongs to this phase alone; elsewhere it is the
    process's lifetime peak and says so.
    """

    def __init__(self, device):
        self.device = torch.device(device)

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
            return self
        self.start = (_rss_kib("VmRSS") or 0) * 1024
        try:
            with open("/proc/self/clear_refs", "w") as file:
                file.write("5")
            self.scope = "phase"
        except OSError:
            self.scope = "process lifetime"
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
            self.scope = "GPU tensors"
        else:
            peak_kib = _rss_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.peak = peak_kib * 1024
        return False

    def describe(self) -> str:
        what = "GPU memory" if self.device.type == "cuda" else "RSS"
        return (f"peak {what} {self.peak / 2**20:.0f} MiB ({(self.peak - self.start) / 2**20:+.0f} MiB over the "
                f"phase's start; {self.scope})")


def current_memory(device) -> int:
    """Bytes in use now: allocated GPU tensors, or the process's resident set size."""
    if torch.device(device).type == "cuda":
        return torch.cuda.memory_allocated()
    return (_rss_kib("VmRSS") or 0) * 1024


def matmul_throughput(device, *, repeats: int = 10, sizes=None) -> tuple[float, dict[int, float]]:
    """This machine's float32 matrix-multiply throughput in FLOP/s, and the figure for each size.

    Definition: the product ``A @ B`` of two square float32 matrices of each size in
    :data:`GEMM_SIZES` (1024, 2048, 4096 on a CPU; 4096, 8192 on a GPU, TF32 off), with all of
    torch's threads, timed ``repeats`` times after a warm-up (a third as often for the largest
    size); a size's figure is ``2 n^3`` over its fastest run, and the machine's throughput is the
    best size's figure. That is the most the machine's GEMM does at any of these sizes, so a bound
    derived from it is never looser than the hardware allows.
    """
    device = torch.device(device)
    allow_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    per_size = {}
    try:
        sizes = tuple(sizes or GEMM_SIZES["cuda" if device.type == "cuda" else "cpu"])
        for n in sizes:
            generator = torch.Generator().manual_seed(n)
            a = torch.randn(n, n, generator=generator).to(device)
            b = torch.randn(n, n, generator=generator).to(device)
            a @ b  # warm-up: thread pools, kernel selection
            times = []
            for _ in range(repeats if n < max(sizes) else max(1, repeats // 3)):
                with timed(device, times):
                    a @ b
            per_size[n] = 2 * n ** 3 / min(times)
            del a, b
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    return max(per_size.values()), per_size


def shape_throughput(device, m: int, k: int, n: int, *, repeats: int = 200) -> float:
    """FLOP/s of ``(m, k) @ (k, n)`` in float32 (for the record: the training's own GEMM shapes)."""
    a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
    a @ b
    times = []
    with timed(device, times):
        for _ in range(repeats):
            a @ b
    return 2 * m * k * n * repeats / times[0]


def add_smoke_argument(parser) -> None:
    """``--smoke``: the script's every section at tiny sizes, in seconds (what ``make test`` runs)."""
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)


def add_machine_arguments(parser, *, device: str | None = "cpu") -> None:
    """``--device``, ``--threads`` and ``--smoke``, shared by the benchmarks.

    ``device=None`` leaves ``args.device`` as ``None`` when the flag is not given, for a script
    whose default depends on ``--smoke`` (it must set it before :func:`start`).
    """
    parser.add_argument("--device", default=device, choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    add_smoke_argument(parser)


def _lthkit_namespaces(package: str):
    """Every loaded module of ``package`` and every class defined in one, each once."""
    seen = set()
    for name, module in list(sys.modules.items()):
        if module is None or not (name == package or name.startswith(package + ".")):
            continue
        for owner in [module, *(value for value in list(vars(module).values())
                                if isinstance(value, type) and value.__module__ == name)]:
            if id(owner) not in seen:
                seen.add(id(owner))
                yield owner


def replace_everywhere(original, replacement, *, package: str = "lthkit") -> list[tuple[object, str]]:
    """Point every reference to the object ``original`` at ``replacement``, and say where they were.

    References are found by identity (``is``) in the globals of every loaded module of ``package``
    and in the attributes of the classes those modules define (methods), so a function is wrapped
    wherever it is called from, whichever module it has moved to or been imported into. Hand the
    returned places to :func:`put_back` to undo it. Raises ``LookupError`` when there is none: a
    wrapper that wraps nothing would time nothing and say so only by a missing figure.
    """
    places = []
    for owner in _lthkit_namespaces(package):
        for attribute, value in list(vars(owner).items()):
            if value is original:
                setattr(owner, attribute, replacement)
                places.append((owner, attribute))
    if not places:
        raise LookupError(f"{getattr(original, '__qualname__', original)!r}: no reference to it in any loaded "
                          f"{package} module")
    return places


def put_back(places, original) -> None:
    """Undo :func:`replace_everywhere`: every place it changed refers to ``original`` again."""
    for owner, attribute in reversed(places):
        setattr(owner, attribute, original)


def start(parser, args) -> None:
    """Apply ``--threads``, refuse ``--device cuda`` without a GPU, and print the machine and the command."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    print(f"machine: {describe_machine(args.device)}")
    print(f"command: python {' '.join(sys.argv)}")
    if getattr(args, "smoke", False):
        print("--smoke: tiny sizes, every section once; the numbers below mean nothing")


def mib(value: int) -> str:
    return f"{value / 2**20:.0f} MiB"

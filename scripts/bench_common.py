"""What every benchmark section shares: the figure record, timing statistics, the machine.

A figure is one number with its unit, the command that reproduces it and, where a comparison
exists, a reference measured in the same run. Every target is an upper bound: it applies to
the ratio when the figure has a reference, and to the value otherwise.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIGNIFICANT_DIGITS = 4


@dataclass(frozen=True)
class Figure:
    """One reported number; ``as_dict`` is exactly the shape of an entry of ``figures``."""

    name: str
    value: float
    unit: str
    reference: float | None
    ratio: float | None
    target: float | None
    command: str

    @property
    def met(self) -> bool | None:
        """Whether the target holds: None without a target."""
        if self.target is None:
            return None
        compared = self.ratio if self.reference is not None else self.value
        return compared is not None and compared <= self.target

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Skipped:
    """A figure (or a whole group of them) that this run could not measure, and why."""

    name: str
    reason: str
    command: str


@dataclass
class Report:
    """Figures and skips collected by the sections of one run."""

    quick: bool
    figures: list[Figure] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def command_for(self, section: str) -> str:
        """The command that measures ``section`` again, in the same mode as this run."""
        mode = " --quick" if self.quick else ""
        return f"python scripts/bench.py{mode} --only {section}"

    def add(
        self,
        section: str,
        name: str,
        value: float,
        unit: str,
        *,
        reference: float | None = None,
        target: float | None = None,
    ) -> Figure:
        """Record a figure; the ratio is ``value / reference`` when there is a reference."""
        ratio = value / reference if reference not in (None, 0.0) else None
        figure = Figure(
            name=f"{section}.{name}",
            value=rounded(value),
            unit=unit,
            reference=None if reference is None else rounded(reference),
            ratio=None if ratio is None else rounded(ratio),
            target=target,
            command=self.command_for(section),
        )
        self.figures.append(figure)
        print(f"  {figure.name} = {figure.value} {unit}" + _comparison(figure), flush=True)
        return figure

    def skip(self, section: str, name: str, reason: str) -> None:
        """Record that ``section.name`` was not measured in this run, with the reason."""
        self.skipped.append(Skipped(f"{section}.{name}", reason, self.command_for(section)))
        print(f"  skipped {section}.{name}: {reason}", flush=True)


def _comparison(figure: Figure) -> str:
    parts = []
    if figure.reference is not None:
        parts.append(f"reference {figure.reference}, ratio {figure.ratio}")
    if figure.target is not None:
        parts.append(f"target {figure.target}: {'met' if figure.met else 'MISSED'}")
    return f" ({'; '.join(parts)})" if parts else ""


def rounded(value: float) -> float:
    """``value`` to :data:`SIGNIFICANT_DIGITS` significant digits, as a plain float."""
    if value == 0 or not np.isfinite(value):
        return float(value)
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


# ------------------------------------------------------------------------------ timing ---


def interleaved_timings(
    cases: Mapping[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds of each call of each case, the cases taking turns in a rotating order.

    On a shared machine the load drifts during a run; rotating the order every round spreads
    that drift evenly over the cases, so their ratio stays fair even when their absolute
    times do not.

    Parameters
    ----------
    cases
        Name -> a call to time; its result is discarded.
    repeats
        Timed calls per case.
    warmup
        Untimed calls per case first, to fill caches (lazy indexes, Gram matrices).

    Returns
    -------
    dict[str, list[float]]
        Name -> ``repeats`` durations in seconds, in call order.
    """
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            cases[name]()
    gc.collect()

    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(repeats):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            cases[name]()
            samples[name].append(time.perf_counter() - started)
    return samples


def median(samples: list[float]) -> float:
    return float(statistics.median(samples))


def percentile(samples: list[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100), linearly interpolated between samples."""
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


# ----------------------------------------------------------------------------- machine ---


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, interpreter and library versions, and every BLAS/OpenMP pool.

    Called at the end of a run, so that every library the sections loaded (scipy's and
    numpy's OpenBLAS, implicit's OpenMP) is in the thread-pool list.
    """
    from threadpoolctl import threadpool_info

    pools = [_pool_summary(pool) for pool in threadpool_info()]
    numpy_blas = next(
        (pool for pool in pools if pool["user_api"] == "blas" and "numpy" in pool["filepath"]),
        next((pool for pool in pools if pool["user_api"] == "blas"), None),
    )
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": _memory_gb(),
        "load_average": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": _version_of("scipy"),
        "implicit": _version_of("implicit"),
        "threadpoolctl": _version_of("threadpoolctl"),
        "numpy_blas": numpy_blas,
        "threadpools": pools,
        "pythondontwritebytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        "executable": sys.executable,
    }


def _pool_summary(pool: dict[str, Any]) -> dict[str, Any]:
    keys = ("user_api", "internal_api", "version", "num_threads", "threading_layer")
    summary = {key: pool.get(key) for key in keys}
    summary["architecture"] = pool.get("architecture")
    summary["filepath"] = str(pool.get("filepath", ""))
    return summary


def _cpu_model() -> str | None:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or None
    for line in lines:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        return None
    return None


def _version_of(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None

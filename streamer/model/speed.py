"""Inference speed of a model: batch-1 latency and batched windows/s.

Each batch size is warmed up, then timed call by call under ``torch.inference_mode`` (with a
CUDA synchronise per call on a GPU) until ``min_runs`` calls and ``min_seconds`` have both
passed. Reported per batch size: median and p99 time per call, windows/s =
batch * calls / total time, and windows/s at the median call (batch / median), which is the
steadier figure on a machine shared with other jobs. Inputs are random full windows (no lengths: the unpacked path
the daemon uses for complete windows).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SpeedResult:
    batch: int
    window: int
    runs: int
    median_ms: float
    p99_ms: float
    windows_per_s: float
    windows_per_s_at_median: float


def pick_device(device: str | None = None) -> torch.device:
    """The given device, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _percentile(sorted_values: list[float], q: float) -> float:
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def time_calls(call: Callable[[], object], *, warmup: int, min_runs: int, min_seconds: float,
               max_seconds: float = math.inf, max_runs: int | None = None) -> list[float]:
    """Seconds per timed call, sorted. ``warmup`` untimed calls first; then calls until at
    least ``min_runs`` have run and ``min_seconds`` (or ``max_runs`` calls) have passed, or
    ``max_seconds`` whatever the count. ``call`` returns when its work is done (a GPU call
    synchronises inside it). Shared by ``streamer model speed`` and ``streamer bench``."""
    for _ in range(warmup):
        call()
    times: list[float] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        call()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        spent = t1 - start
        enough = spent >= min_seconds or (max_runs is not None and len(times) >= max_runs)
        if (len(times) >= min_runs and enough) or spent >= max_seconds:
            break
    times.sort()
    return times


def benchmark(
    model: torch.nn.Module,
    *,
    window: int,
    batch_sizes: tuple[int, ...] = (1, 64, 256),
    device: str | torch.device | None = None,
    warmup: int = 5,
    min_runs: int = 20,
    min_seconds: float = 2.0,
    max_seconds: float = 20.0,
    seed: int = 0,
) -> list[SpeedResult]:
    """Time the model's forward pass at each batch size; one SpeedResult per batch size."""
    device = pick_device(str(device) if device is not None else None)
    model = model.to(device).eval()
    features = model.input_size
    gen = torch.Generator().manual_seed(seed)
    results = []
    cuda = device.type == "cuda"
    with torch.inference_mode():
        for batch in batch_sizes:
            x = torch.randn(batch, window, features, generator=gen).to(device)

            def call(x: torch.Tensor = x) -> None:
                model(x)
                if cuda:
                    torch.cuda.synchronize(device)

            times = time_calls(call, warmup=warmup, min_runs=min_runs, min_seconds=min_seconds,
                               max_seconds=max_seconds)
            results.append(
                SpeedResult(
                    batch=batch,
                    window=window,
                    runs=len(times),
                    median_ms=statistics.median(times) * 1e3,
                    p99_ms=_percentile(times, 0.99) * 1e3,
                    windows_per_s=batch * len(times) / sum(times),
                    windows_per_s_at_median=batch / statistics.median(times),
                )
            )
    return results


def describe_runtime(device: torch.device) -> str:
    """One line: torch version, device and thread count, for the benchmark's header."""
    if device.type == "cuda":
        where = f"CUDA ({torch.cuda.get_device_name(device)})"
    else:
        where = "CPU"
    return f"torch {torch.__version__}, device {where}, {torch.get_num_threads()} torch threads"


def format_table(results: list[SpeedResult]) -> str:
    head = ("batch", "window", "runs", "median ms", "p99 ms", "windows/s", "at median")
    lines = [f"{head[0]:>6} {head[1]:>6} {head[2]:>6} " + " ".join(f"{h:>10}" for h in head[3:])]
    for r in results:
        lines.append(
            f"{r.batch:>6} {r.window:>6} {r.runs:>6} {r.median_ms:>10.2f} {r.p99_ms:>10.2f} "
            f"{r.windows_per_s:>10,.0f} {r.windows_per_s_at_median:>10,.0f}"
        )
    return "\n".join(lines)

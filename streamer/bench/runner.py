"""The five sections of `streamer bench`, each a function returning plain numbers.

1. client limit: raw aiokafka produce rate and consume + orjson decode rate;
2. ingest: the daemon's records/s when evaluation is rare (hop larger than the run), and
   its own CPU per reading without a broker (the poll handler minus ``orjson.loads``);
3. latency: N strands x R Hz, every reading evaluated: reading time -> alert received;
4. capacity: the most strands at 1 Hz, every reading evaluated, with p99 <= 1 s;
5. model: windows/s against batch size, CPU and CUDA where present.
"""

from __future__ import annotations

import asyncio
import math
import platform
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulators.broker import create_topics
from streamer.bench import ingest_cost
from streamer.bench.daemon import DaemonGroup, DaemonProcess
from streamer.bench.load import (
    LatencyProbe,
    backlog,
    consume_decode,
    paced_load_split,
    produce_all,
    produce_backlog,
    strand_names,
)
from streamer.evaluation.events import percentile

Say = Callable[[str], None]
CPU_MAX_BATCH = 1024  # the model section's largest batch on a CPU


@dataclass
class BenchOptions:
    bootstrap: str
    broker_desc: str
    model: Path | None = None
    client_records: int = 200_000
    latency_strands: int = 64
    latency_rate_hz: float = 1.0
    latency_seconds: float = 30.0
    capacity_steps: tuple[int, ...] = (128, 256, 512, 1024, 2048)
    capacity_seconds: float = 20.0
    p99_budget_s: float = 1.0
    model_batches: tuple[int, ...] = (1, 16, 64, 256, 1024)
    model_seconds: float = 2.0
    torch_threads: int = 0
    workers: int = 1  # daemon processes in one consumer group (latency and capacity)
    load_procs: int = 1  # processes generating the paced load and the backlog
    cost_repeat: int = 5  # best-of runs of the no-broker per-reading cost (section 2)
    partitions: int = 8
    log_dir: Path | None = None


def _topic(kind: str) -> str:
    return f"bench-{kind}-{uuid.uuid4().hex[:8]}"


def _partitions(o: BenchOptions) -> int:
    return max(o.partitions, 2 * o.workers)  # every worker gets partitions to read


async def _topics(o: BenchOptions, kind: str) -> str:
    t = _topic(kind)
    await create_topics(o.bootstrap, [t, f"{t}.alerts"], partitions=_partitions(o))
    await create_topics(o.bootstrap, [f"{t}.dlq"], partitions=1)
    return t


async def client_limit(o: BenchOptions, say: Say) -> dict[str, Any]:
    per = max(1, o.client_records // 100)
    msgs = backlog(strand_names(100), per, time.time())
    t = await _topics(o, "client")
    say(f"client limit: producing {len(msgs):,} readings with the raw aiokafka producer")
    produce_s = await produce_all(o.bootstrap, t, msgs)
    say("client limit: raw consume + orjson decode")
    consume_s = await consume_decode(o.bootstrap, t, len(msgs))
    return {"records": len(msgs), "topic": t, "bytes_per_record": round(
        float(np.mean([len(v) for _, v in msgs[:1000]])), 1),
            "produce_per_s": len(msgs) / produce_s, "consume_decode_per_s": len(msgs) / consume_s}


async def ingest(o: BenchOptions, client: dict[str, Any], say: Say) -> dict[str, Any]:
    n, t = client["records"], client["topic"]
    say(f"ingest: the daemon reads the same {n:,} records, evaluation off (hop > run)")
    d = DaemonProcess(o.bootstrap, t, hop=10**9, model=o.model, torch_threads=o.torch_threads,
                      log_path=o.log_dir / "ingest.log" if o.log_dir else None)
    try:
        await asyncio.to_thread(d.wait_ready)
        t0 = t1 = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            seen = d.metric("streamer_records_in_total")
            now = time.perf_counter()
            if t0 is None and seen > 0:
                t0, first = now, seen
            if seen >= n:
                t1 = now
                break
            await asyncio.sleep(0.02)
        if t0 is None or t1 is None:
            raise RuntimeError("daemon did not consume the records in time")
        rate = (n - first) / (t1 - t0) if t1 > t0 else float("inf")
    finally:
        d.stop()
    say("ingest: the daemon's own CPU per reading without a broker (streamer.bench.ingest_cost)")
    cost = await asyncio.to_thread(ingest_cost.measure, o.cost_repeat)
    return {"records": n, "records_per_s": rate,
            "ratio_to_raw": rate / client["consume_decode_per_s"],
            "cpu_us_per_reading": {k: cost[k] for k in ("handle_us", "loads_us", "own_us")}}


async def latency_run(o: BenchOptions, strands: int, rate_hz: float, seconds: float,
                      say: Say, label: str) -> dict[str, Any]:
    """Fill every window from a backlog, then a paced load; latency of the paced part."""
    t = await _topics(o, label)
    names = strand_names(strands)
    window = 120
    # The backlog's last reading is older than the paced load's first by however long filling
    # takes (a minute at 20,000 strands): a long gap_restart_s keeps that from restarting
    # every window, which would leave nothing to evaluate.
    d = DaemonGroup(o.workers, o.bootstrap, t, hop=1, model=o.model,
                    torch_threads=o.torch_threads,
                    log_path=o.log_dir / f"{label}.log" if o.log_dir else None,
                    extra_env={"STREAMER_BUFFER__MIN_FILL": str(window),
                               "STREAMER_BUFFER__GAP_RESTART_S": "3600"})
    try:
        await asyncio.to_thread(d.wait_ready)
        t_fill = time.monotonic()
        await produce_backlog(o.bootstrap, t, names, window, time.time(), o.load_procs)
        deadline = time.monotonic() + 300
        while d.metric("streamer_evaluations_total") < strands and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        fill_s = time.monotonic() - t_fill
        stop = asyncio.Event()
        probe = LatencyProbe(since_ts=time.time())
        listener = asyncio.create_task(probe.run(o.bootstrap, f"{t}.alerts", stop))
        await asyncio.sleep(0.3)
        probe.since_ts = time.time()
        say(f"{label}: {strands} strands x {rate_hz:g} Hz for {seconds:g} s "
            f"({o.workers} daemon worker(s), windows filled in {fill_s:.0f} s)")
        sent = await paced_load_split(o.bootstrap, t, names, rate_hz, seconds, window,
                                      o.load_procs)
        grace = time.monotonic() + 10
        while len(probe.latencies) < sent and time.monotonic() < grace:
            await asyncio.sleep(0.05)
        stop.set()
        await listener
    finally:
        d.stop()
    lat = sorted(probe.latencies)
    missing = sent - len(lat)
    # an alert that never came within the grace period counts as infinitely late
    lat_all = lat + [math.inf] * max(0, missing)
    return {"strands": strands, "rate_hz": rate_hz, "seconds": seconds, "readings": sent,
            "workers": o.workers, "alerts": len(lat),
            "p50_ms": 1000 * percentile(lat_all, 50) if lat_all else None,
            "p99_ms": 1000 * percentile(lat_all, 99) if lat_all else None,
            "max_ms": 1000 * lat_all[-1] if lat_all else None}


async def capacity(o: BenchOptions, say: Say) -> dict[str, Any]:
    steps, best = [], 0
    for n in o.capacity_steps:
        r = await latency_run(o, n, 1.0, o.capacity_seconds, say, f"capacity-{n}")
        ok = r["p99_ms"] is not None and r["p99_ms"] <= o.p99_budget_s * 1000
        r["within_budget"] = ok
        steps.append(r)
        say(f"capacity: {n} strands p99 {r['p99_ms']:.0f} ms -> {'ok' if ok else 'over budget'}")
        if not ok:
            break
        best = n
    return {"p99_budget_ms": o.p99_budget_s * 1000, "max_strands_within_budget": best,
            "steps": steps}


def model_speed(o: BenchOptions, say: Say) -> dict[str, Any]:
    """Windows/s of the daemon's inference step (model + explanation, host->device copy
    included) on full windows, per device and precision, by batch size."""
    import torch

    from streamer.app import default_model_path
    from streamer.infer.engine import InferenceEngine
    from streamer.model.checkpoint import load_checkpoint
    from streamer.model.speed import time_calls

    lm = load_checkpoint(o.model or default_model_path())
    combos = [("cpu", "fp32")]
    if torch.cuda.is_available():
        combos += [("cuda", "fp32"), ("cuda", "bf16")]
    out: dict[str, Any] = {"model_id": lm.model_id, "window": lm.window, "results": []}
    rng = np.random.default_rng(0)
    for dev, prec in combos:
        say(f"model: windows/s on {dev} {prec}")
        if o.torch_threads and dev == "cpu":
            torch.set_num_threads(o.torch_threads)
        eng = InferenceEngine(lm.model, device=dev, precision=prec)
        for b in o.model_batches:
            if dev == "cpu" and b > CPU_MAX_BATCH:
                continue  # flat beyond a few hundred on a CPU, and seconds a call
            x = (150 + rng.standard_normal((b, lm.window, len(lm.channels)))).astype(np.float32)
            lengths = np.full(b, lm.window, dtype=np.int64)
            # eng.run returns numpy: the device is synchronised when it returns
            times = time_calls(lambda e=eng, x=x, n=lengths: e.run(x, n), warmup=3,
                               min_runs=5, min_seconds=o.model_seconds, max_runs=2000)
            med = times[len(times) // 2]
            out["results"].append({"device": dev, "precision": prec, "batch": b,
                                   "runs": len(times), "median_ms": 1000 * med,
                                   "p99_ms": 1000 * percentile(times, 99),
                                   "windows_per_s": b / med})
    return out


def environment(o: BenchOptions) -> dict[str, Any]:
    import os

    import torch

    return {"machine": platform.machine(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "broker": o.broker_desc, "torch_threads_daemon": o.torch_threads or "default",
            "when": time.strftime("%Y-%m-%d %H:%M:%S %Z")}

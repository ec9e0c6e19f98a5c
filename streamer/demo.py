"""``streamer demo``: the whole data path on one machine, with nothing else to start.

Embedded broker -> simulated caster replayed at accelerated time -> the daemon with the
shipped model -> a live view of each strand and a log of alarms scored against the
simulator's ground truth. Everything it starts, it stops.

Latency, as the summary reports it: from the Kafka timestamp of a reading's record (its
CreateTime, stamped by the replay's producer when the reading is handed over for sending,
i.e. at its due time on the accelerated clock) to the demo's own subscriber receiving the
alert derived from it; both ends read this machine's wall clock. The daemon's timings in
each alert split it into stages (to the daemon, batching + model, back to a subscriber).

The daemon runs in this process with ONE torch thread by default. Measured on a 2-core
machine with other load: torch's default (one intra-op thread per core) made every model
call wait on its sibling threads (batch ~70: p50 725 ms instead of ~6 ms), inference fell
behind the 120 windows/s of 6 strands at 20x and windows queued before the model
(latency p50 1.8 s, p99 4-7 s); one thread serves well over 1,000 windows/s here and gave
p50 23 ms, p99 52 ms. The daemon in its own process changed little (p50 25 ms with one
thread; p50 224 ms, p99 3.9 s with torch's default), so the thread count, not sharing
the process, was the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from streamer.evaluation.events import Raise, TruthEvent, percentile, score_events

# Defect rates far above a plant's, so a one-minute demo shows several (per strand-hour).
DEMO_RATES = {"sticker": 2.5, "crack": 1.2, "slag": 1.2}
LATENCY_MEASURES = ("reading's Kafka record timestamp (stamped by the replay's producer as it "
                    "sends the reading) -> alert received by the demo's subscriber")
LATENCY_STAGES = ("to_daemon", "batching_and_model", "alert_to_subscriber")
TOPICS = {"readings": "caster.readings", "alerts": "caster.alerts",
          "dlq": "caster.readings.dlq", "events": "caster.events"}


@dataclass
class StrandView:
    heat: str = ""
    level: str = "normal"
    probs: dict[str, float] = field(default_factory=dict)
    ts: float = 0.0
    evaluations: int = 0


@dataclass
class DemoState:
    strands: dict[str, StrandView] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    raises: list[Raise] = field(default_factory=list)
    truth: dict[str, TruthEvent] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    # per alert: (record -> daemon received, received -> inferred, inferred -> subscriber)
    stages: list[tuple[float, float, float]] = field(default_factory=list)
    first_ts: dict[str, float] = field(default_factory=dict)
    last_ts: dict[str, float] = field(default_factory=dict)
    replayed: int = 0

    def on_alert(self, doc: dict[str, Any], now: float) -> str | None:
        s = doc["strand"]
        v = self.strands.setdefault(s, StrandView())
        v.heat, v.level, v.probs, v.ts = doc["heat"], doc["level"], doc["probabilities"], doc["ts"]
        v.evaluations += 1
        self.first_ts.setdefault(s, doc["ts"])
        self.last_ts[s] = doc["ts"]
        t = doc["timings"]
        rts = t.get("record_ts")
        if rts:
            self.latencies.append(now - rts)
            rec, inf = t.get("received_ts"), t.get("inferred_ts")
            if rec is not None and inf is not None:
                self.stages.append((rec - rts, inf - rec, now - inf))
        line = None
        for e in doc["events"]:
            if e["event"] != "raised":
                continue
            r = Raise(s, e["defect"], doc["ts"])
            self.raises.append(r)
            match = [t for t in self.truth.values() if t.strand == s and t.type == r.defect
                     and t.onset_ts <= r.ts <= t.critical_ts]
            p = doc["probabilities"][r.defect]
            if match:
                lead = match[0].critical_ts - r.ts
                what = "breakout" if r.defect == "sticker" else "critical time"
                line = (f"{s} {r.defect} alarm p={p:.2f}: TRUE, {lead:.0f} s before {what} "
                        f"({match[0].event_id})")
            else:
                line = f"{s} {r.defect} alarm p={p:.2f}: no {r.defect} in the ground truth (yet)"
            self.log.append(line)
        return line

    def on_event(self, doc: dict[str, Any]) -> None:
        if doc.get("kind") == "defect":
            self.truth[doc["event_id"]] = TruthEvent(doc["event_id"], doc["strand"], doc["type"],
                                                     doc["onset_ts"], doc["critical_ts"])

    def summary(self) -> dict[str, Any]:
        seconds = sum(self.last_ts[s] - self.first_ts[s] for s in self.last_ts)
        score = score_events(self.raises, self.truth.values(), observed_until=self.last_ts,
                             strand_seconds=seconds)
        lat = sorted(self.latencies)
        stage_p50 = {name: percentile(sorted(x[k] for x in self.stages), 50)
                     for k, name in enumerate(LATENCY_STAGES)} if self.stages else None
        return {
            "alerts": sum(v.evaluations for v in self.strands.values()),
            "readings_replayed": self.replayed,
            "events": score.as_dict(),
            "latency_p50_s": percentile(lat, 50) if lat else None,
            "latency_p99_s": percentile(lat, 99) if lat else None,
            "latency_n": len(lat),
            "latency_measures": LATENCY_MEASURES,
            "latency_stages_p50_s": stage_p50,
        }


def render(state: DemoState, elapsed: float, duration: float | None) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    colours = {"normal": "green", "watch": "yellow", "warning": "dark_orange", "alarm": "bold red"}
    t = Table(title=f"streamer demo  {elapsed:5.0f} s" + (f" / {duration:.0f} s" if duration else ""),
              expand=False)
    for col in ("strand", "heat", "level", "p(sticker)", "p(crack)", "p(slag)", "evaluations"):
        t.add_column(col, justify="right" if col.startswith(("p(", "eval")) else "left")
    for s in sorted(state.strands):
        v = state.strands[s]
        t.add_row(s, v.heat, Text(v.level, style=colours.get(v.level, "")),
                  *(f"{v.probs.get(k, 0):.2f}" for k in ("sticker", "crack", "slag")),
                  str(v.evaluations))
    log = Text("\n".join(state.log[-10:]) or "no alarms yet")
    return Group(t, Text("alarms raised:", style="bold"), log)


async def _listen(bootstrap: str, state: DemoState, stop: asyncio.Event, live: Any,
                  echo: Any) -> None:
    c = AIOKafkaConsumer(TOPICS["alerts"], TOPICS["events"], bootstrap_servers=bootstrap,
                         group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
                         fetch_max_wait_ms=10)
    await c.start()
    try:
        while not stop.is_set():
            batch = await c.getmany(timeout_ms=200)
            now = time.time()
            for tp, msgs in batch.items():
                for m in msgs:
                    doc = orjson.loads(m.value)
                    if tp.topic == TOPICS["events"]:
                        state.on_event(doc)
                    else:
                        line = state.on_alert(doc, now)
                        if line and live is None:
                            echo(line)
    finally:
        await c.stop()


async def run_demo(*, duration: float | None, strands: int, speed: float, seed: int,
                   model: Path | None, live_view: bool, echo: Any,
                   torch_threads: int = 1) -> dict[str, Any]:
    """Run the demo until ``duration`` (or SIGINT/SIGTERM) and return :meth:`DemoState.summary`.

    torch_threads: the daemon's intra-op threads (0 = torch's default); 1 by default, see
    the module docstring for why.
    """
    from rich.console import Console
    from rich.live import Live

    from simulators.broker import EmbeddedBroker, create_topics, free_port
    from simulators.caster.generate import generate
    from simulators.replay import replay
    from streamer.app import Application
    from streamer.config import load_settings

    span_s = (duration or 3600.0) * speed + 300.0
    echo(f"simulating {strands} strands x {span_s / 60:.0f} min of casting (seed {seed}) ...")
    heats = generate(seed=seed, casters=1, strands_per_caster=strands, hours=span_s / 3600,
                     rates=DEMO_RATES)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    broker = EmbeddedBroker().start()
    state = DemoState()
    try:
        await create_topics(broker.bootstrap, [TOPICS["readings"]], partitions=strands)
        await create_topics(broker.bootstrap, [TOPICS["alerts"], TOPICS["dlq"], TOPICS["events"]])
        overrides: dict[str, Any] = {
            "kafka.bootstrap_servers": broker.bootstrap, "kafka.group_id": "streamer-demo",
            "kafka.auto_offset_reset": "earliest", "http.port": free_port(),
            "model.torch_threads": torch_threads,
        }
        if model is not None:
            overrides["model.path"] = str(model)
        app = Application(load_settings(None, overrides))
        daemon = asyncio.create_task(app.run(install_signal_handlers=False))
        while not app.ready() and not daemon.done():
            await asyncio.sleep(0.05)
        if daemon.done():
            raise RuntimeError(f"daemon failed to start: {app._fatal}")
        echo(f"broker {broker.bootstrap}; daemon ready (model {app.model_id}, "
             f"{torch_threads or 'default'} torch thread(s), metrics on "
             f"http://127.0.0.1:{app.http_port}/metrics); replaying at {speed:g}x")

        def progress(stats: Any) -> None:
            state.replayed = stats.acked

        feeder = asyncio.create_task(replay(
            heats, producer=app.producer, topic=TOPICS["readings"], speed=speed,
            events_topic=TOPICS["events"], rebase_ts=time.time(), stop=stop,
            on_progress=progress))
        listen_stop = asyncio.Event()
        live = Live(render(state, 0, duration), refresh_per_second=4,
                    console=Console(stderr=False)) if live_view else None
        listener = asyncio.create_task(_listen(broker.bootstrap, state, listen_stop, live, echo))
        t0 = time.monotonic()
        with live if live is not None else contextlib.nullcontext():
            while not stop.is_set() and not feeder.done() and not daemon.done():
                elapsed = time.monotonic() - t0
                if duration is not None and elapsed >= duration:
                    break
                if live is not None:
                    live.update(render(state, elapsed, duration))
                await asyncio.sleep(0.25)
            stop.set()
            await feeder
            app.request_stop()
            code = await daemon
            await asyncio.sleep(1.0)  # let the listener read the last alerts
            listen_stop.set()
            await listener
            if live is not None:
                live.update(render(state, time.monotonic() - t0, duration))
        if code != 0:
            raise RuntimeError(f"daemon stopped with an error: {app._fatal}")
        return state.summary()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        broker.stop()


def format_summary(s: dict[str, Any]) -> str:
    ev = s["events"]
    lines = ["", "demo summary", f"  readings replayed: {s['readings_replayed']}, alerts: {s['alerts']}",
             f"  observed: {ev['strand_days'] * 24:.1f} strand-hours of casting"]
    for t, d in ev["by_type"].items():
        lt = d["lead_time_median_s"]
        lines.append(f"  {t:<8} caught {d['caught']}, missed {d['missed']}, pending "
                     f"{d['pending']}" + (f", median lead {lt:.0f} s" if lt is not None else ""))
    lines.append(f"  false alarms: {ev['false_alarms']}  mistyped: "
                 f"{sum(d['mistyped'] for d in ev['by_type'].values())}")
    if s["latency_p50_s"] is not None:
        lines.append(f"  latency over {s['latency_n']} alerts: p50 {s['latency_p50_s'] * 1000:.0f} "
                     f"ms, p99 {s['latency_p99_s'] * 1000:.0f} ms")
        lines.append(f"    from: {s['latency_measures']}")
        st = s.get("latency_stages_p50_s")
        if st:
            lines.append(f"    p50 by stage: reading to daemon {st['to_daemon'] * 1000:.0f} ms, "
                         f"batching + model {st['batching_and_model'] * 1000:.0f} ms, alert to "
                         f"subscriber {st['alert_to_subscriber'] * 1000:.0f} ms")
    return "\n".join(lines)

"""The daemon: wires consumer, buffers, batcher, model, alarm states, producer and commits.

The checkpoint order, in one place (cf. Quix Streams' checkpointing):

1. poll a batch of records (``getmany``); decode each; bad ones go to the dead-letter topic
   at once (their delivery futures join the batch's checkpoint);
2. fill failed thermocouples from each strand's previous reading (``consume.tc_fill``), append
   good readings to the strands' ring buffers; snapshot every window now due;
3. the inference task batches due windows across polls (``max_batch``, ``max_delay_ms``)
   and runs the model in ONE dedicated thread;
4. alarm states turn probabilities into levels and raised/cleared events; alerts are handed
   to the producer (acks=all); their futures join the checkpoint, which is then *sealed*;
5. the commit task commits, per partition and with explicit offsets, only checkpoints that
   are sealed and whose every future is acknowledged, in poll order.

On revoke and on SIGTERM: stop polling, finish what is in flight, wait for acks, commit, then
stop, bounded by ``shutdown.drain_timeout_s``. On assignment the buffers are refilled from the
log before the committed offset (the log is the state; nothing is published for those).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections import Counter as Tally
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError

from streamer.alarm.levels import AlarmStates, unstable_reason
from streamer.alarm.thresholds import ResolvedThresholds, ThresholdError, resolve_thresholds
from streamer.batch.batcher import DynamicBatcher
from streamer.buffer.ring import AppendResult, StrandBuffers, WindowRef
from streamer.commit.tracker import Checkpoint, CommitTracker, DeliveryFailed
from streamer.config import Settings
from streamer.consume.decode import BatchDecoder, DecodedBatch, Rejected
from streamer.consume.warmup import warm_up_partition
from streamer.formats.alert import ALERT_VERSION, LEVELS, encode_alert
from streamer.infer.engine import InferenceEngine, InferResult
from streamer.kafka_client import security_kwargs
from streamer.model.shipped import default_model_path
from streamer.ops.metrics import Metrics
from streamer.publish.producer import DLQ_VALUE_LIMIT, dead_letter_headers, start_producer

log = structlog.get_logger("streamer")


@dataclass(slots=True)
class WindowMeta:
    strand: str
    heat: str
    ts: float
    seq: int
    partition: int
    offset: int
    degraded: tuple[str, ...]
    received: float
    length: int
    record_ts: float | None  # Kafka CreateTime of the reading record (producer's wall clock)


@dataclass
class WorkItem:
    windows: np.ndarray
    lengths: np.ndarray
    metas: list[WindowMeta]
    checkpoint: Checkpoint


@dataclass
class RunStats:
    """Counters a test or the demo can read without scraping /metrics."""

    records: int = 0
    evaluations: int = 0
    dead_letters: Tally[str] = field(default_factory=Tally)
    dropped: Tally[str] = field(default_factory=Tally)
    alerts: int = 0
    raised: int = 0
    warmup_records: int = 0


class StartupError(Exception):
    """The daemon cannot start as configured (model, device); the message names the field."""


class _Listener(ConsumerRebalanceListener):
    def __init__(self, app: Application):
        self.app = app

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.app._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.app._on_assigned(set(assigned))


class Application:
    def __init__(self, settings: Settings, *, loaded: Any | None = None,
                 metrics: Metrics | None = None):
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.stats = RunStats()
        self._loaded = loaded
        self._stop = asyncio.Event()
        self._fatal: BaseException | None = None
        self._ready = False
        self._joined = False
        self._to_warm: set[TopicPartition] = set()
        self._paused = False
        self._last_progress = time.monotonic()
        self._pending_windows = 0
        self._uncommitted: dict[TopicPartition, int] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: Any = None
        self.http_port: int | None = None

    # -- health ------------------------------------------------------------------------------

    def healthy(self) -> bool:
        """Liveness: the loop runs and the consumer made progress recently."""
        stall = 60.0  # the poll loop calls getmany every fetch_timeout_ms, paused or not
        return self._fatal is None and time.monotonic() - self._last_progress < stall

    def ready(self) -> bool:
        """Readiness: model loaded, group joined, every assigned partition warmed up."""
        return self._ready and self._joined and not self._to_warm and not self._stop.is_set()

    def request_stop(self) -> None:
        self._stop.set()

    # -- start-up ------------------------------------------------------------------------------

    def _load_model(self) -> None:
        from streamer.model.checkpoint import CheckpointError, load_checkpoint

        if self._loaded is None:
            path = self.settings.model.path or default_model_path(self.settings.model.shipped)
            try:
                self._loaded = load_checkpoint(path)
            except CheckpointError as exc:
                raise StartupError(f"model.path: {exc}") from None
        lm = self._loaded
        m = self.settings.model
        try:
            self.engine = InferenceEngine(lm.model, device=m.device, precision=m.precision,
                                          torch_threads=m.torch_threads)
        except RuntimeError as exc:
            raise StartupError(f"model.device: {exc}") from None
        self.channels = tuple(lm.channels)
        self.defect_types = tuple(lm.defect_types)
        self.window = int(lm.window)
        self.model_id = lm.model_id
        b = self.settings.buffer
        self.decoder = BatchDecoder(self.channels)
        self.buffers = StrandBuffers(self.window, len(self.channels), hop=b.hop,
                                     min_fill=min(b.min_fill, self.window),
                                     gap_restart_s=b.gap_restart_s)
        try:  # config > checkpoint > alerts.alarm, per type (streamer.alarm.thresholds)
            self.alarm_thresholds: ResolvedThresholds = resolve_thresholds(
                self.settings.alerts, self.defect_types, lm.metadata)
        except ThresholdError as exc:
            msg = str(exc)
            raise StartupError(msg if msg.startswith("alerts.")
                               else f"model.path: {msg}") from None
        self.alarms = AlarmStates(self.settings.alerts, self.defect_types, self.alarm_thresholds)
        self.engine.warmup(self.window, len(self.channels))

    async def _connect(self) -> None:
        """Start producer and consumer, retrying an unreachable broker with backoff."""
        k = self.settings.kafka
        delay, waited = 0.5, 0.0
        while True:
            consumer = None
            try:
                self.producer = await start_producer(k)
                consumer = AIOKafkaConsumer(
                    bootstrap_servers=k.bootstrap_servers, client_id=k.client_id,
                    group_id=k.group_id, group_instance_id=k.group_instance_id,
                    enable_auto_commit=False, auto_offset_reset=k.auto_offset_reset,
                    session_timeout_ms=k.session_timeout_ms,
                    heartbeat_interval_ms=k.heartbeat_interval_ms,
                    max_poll_interval_ms=k.max_poll_interval_ms,
                    max_partition_fetch_bytes=4 * 1024 * 1024,
                    fetch_max_wait_ms=k.fetch_max_wait_ms, **security_kwargs(k),
                )
                await consumer.start()
                consumer.subscribe([k.readings_topic], listener=_Listener(self))
                self.consumer = consumer
                return
            except (KafkaConnectionError, KafkaError, OSError) as exc:
                if self.producer is not None:
                    await self.producer.stop()
                    self.producer = None
                if consumer is not None:
                    await consumer.stop()
                if waited >= k.connect_retry_max_s or self._stop.is_set():
                    raise ConnectionError(
                        f"cannot reach Kafka at {k.bootstrap_servers} after {waited:.0f}s: "
                        f"{exc}") from None
                log.warning("broker unreachable; retrying", bootstrap=k.bootstrap_servers,
                            error=str(exc), retry_in_s=delay)
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                except TimeoutError:
                    pass
                waited += delay
                delay = min(delay * 2, 15.0)

    # -- main ------------------------------------------------------------------------------------

    async def run(self, install_signal_handlers: bool = True) -> int:
        """Run until stopped; 0 after a clean drain, 1 after a fatal error."""
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        from streamer.ops.sdnotify import SystemdNotifier, watchdog_loop

        notifier = SystemdNotifier()
        runner = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")
        tasks: list[asyncio.Task[Any]] = []
        try:
            await loop.run_in_executor(self._executor, self._load_model)
            log.info("model loaded", model_id=self.model_id, window=self.window,
                     channels=len(self.channels), device=str(self.engine.device),
                     precision=self.engine.precision)
            log.info("alarm thresholds", **self.alarm_thresholds.by_type_text(),
                     on_delay=self.alarm_thresholds.delay_text())
            # Everything loaded so far (torch, the model, libraries) lives as long as the
            # process: move it out of the collector's reach, so that a full collection scans
            # only the objects of the readings in flight, not hundreds of thousands of
            # long-lived ones (the Instagram/CPython gc.freeze recipe; see docs/benchmarks.md).
            gc.collect()
            gc.freeze()
            self._ready = True
            if self.settings.http.port:
                from streamer.ops.http import bound_port, start_http

                runner = await start_http(self.settings.http.host, self.settings.http.port,
                                          self.metrics, self.healthy, self.ready)
                self.http_port = bound_port(runner)
            await self._connect()
            self._batcher: DynamicBatcher[WorkItem] = DynamicBatcher(
                lambda it: len(it.metas), self.settings.batch.max_batch,
                self.settings.batch.max_delay_ms / 1000)
            self.tracker = CommitTracker()
            tasks = [
                asyncio.create_task(self._poll_loop(), name="poll"),
                asyncio.create_task(self._infer_loop(), name="infer"),
                asyncio.create_task(self._commit_loop(), name="commit"),
                asyncio.create_task(self._housekeeping_loop(), name="housekeeping"),
            ]
            if notifier.enabled:
                tasks.append(asyncio.create_task(self._notify_ready(notifier), name="notify"))
                tasks.append(asyncio.create_task(watchdog_loop(notifier, self.healthy)))
            stop_wait = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait([stop_wait, *tasks[:3]],
                                         return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stop_wait and t.exception() is not None:
                    self._fatal = t.exception()
            stop_wait.cancel()
            self._stop.set()
            notifier.stopping()
            if self._fatal is None:
                await self._drain(final=True)
            return 0 if self._fatal is None else 1
        except StartupError as exc:
            self._fatal = exc
            log.error("cannot start", error=str(exc))
            return 1
        except ConnectionError as exc:
            self._fatal = exc
            log.error("giving up", error=str(exc))
            return 1
        except Exception as exc:  # never a bare traceback from the daemon
            self._fatal = exc
            log.exception("fatal error")
            return 1
        finally:
            if self._fatal is not None and not isinstance(self._fatal,
                                                          (ConnectionError, StartupError)):
                log.error("stopping after fatal error; uncommitted records will be re-read "
                          "at restart", error=repr(self._fatal))
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.consumer is not None:
                await self.consumer.stop()
            if self.producer is not None:
                await self.producer.stop()
            if runner is not None:
                await runner.cleanup()
            self._executor.shutdown(wait=True)
            if install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            log.info("stopped", records=self.stats.records, evaluations=self.stats.evaluations,
                     alerts=self.stats.alerts, dead_letters=sum(self.stats.dead_letters.values()))

    async def _notify_ready(self, notifier: Any) -> None:
        while not self.ready():
            await asyncio.sleep(0.1)
        notifier.ready()

    # -- consume -> buffer ----------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        assert self.consumer is not None
        k = self.settings.kafka
        while not self._stop.is_set():
            if self._to_warm:
                await self._warm_up()
            batch = await self.consumer.getmany(timeout_ms=k.fetch_timeout_ms,
                                                max_records=k.fetch_max_records)
            self._last_progress = time.monotonic()
            if batch and not self._stop.is_set():
                await self._handle(batch)

    async def _handle(self, batch: dict[TopicPartition, list[Any]]) -> None:
        received = time.time()
        now = time.monotonic()
        cp = self.tracker.open({tp: msgs[-1].offset + 1 for tp, msgs in batch.items() if msgs})
        items: list[WorkItem] = []
        for tp, msgs in batch.items():
            self.stats.records += len(msgs)
            dec = self._decode(msgs)
            for i, rej in dec.rejected:
                await self._dead_letter(tp, msgs[i], rej, cp)
            n, start = len(dec.order), 0
            while start < n:
                res = self.buffers.append_batch(dec.strands, dec.heats, dec.ts, dec.seq,
                                                dec.values, now, tp.partition, start)
                codes = res.codes[start:res.stop]
                dups = int((codes == AppendResult.DUPLICATE).sum())
                if dups:
                    self.stats.dropped["duplicate_or_out_of_order"] += dups
                    self.metrics.dropped.labels("duplicate_or_out_of_order").inc(dups)
                restarts = int((codes == AppendResult.RESTARTED).sum())
                if restarts:
                    self.metrics.window_restarts.inc(restarts)
                refs = [ref for _, ref in res.due]
                metas = []
                for row, ref in res.due:
                    m = msgs[dec.order[row]]
                    metas.append(WindowMeta(
                        dec.strands[row], dec.heats[row], float(dec.ts[row]),
                        int(dec.seq[row]), tp.partition, m.offset,
                        dec.degraded.get(row, ()), received, ref.length,
                        m.timestamp / 1000 if m.timestamp_type == 0 and m.timestamp > 0
                        else None))
                items += self._snapshot(refs, metas, cp)
                start = res.stop
            if dec.degraded:
                self.metrics.degraded.inc(len(dec.degraded))
        self.metrics.records_in.inc(sum(len(v) for v in batch.values()))
        cp.pending_windows = len(items)
        if not items:
            cp.sealed = True
        for it in items:
            self._pending_windows += len(it.metas)
            self._batcher.put(it)
        self.metrics.pending.set(self._pending_windows)
        if self._pending_windows > self.settings.batch.max_pending_windows and not self._paused:
            self._set_paused(True)

    def _decode(self, msgs: list[Any]) -> DecodedBatch:
        """Decode records of one partition; a failed thermocouple is then carried from its
        strand's previous reading, not left at its row mean: before the rows go into the
        buffer, which holds that reading (``consume.tc_fill``). The live path and the
        warm-up both come here, so the buffers hold the same values either way."""
        dec = self.decoder.decode_columns([m.key for m in msgs], [m.value for m in msgs])
        self.decoder.tc_fill.carry_poll(dec.values, dec.strands, dec.degraded,
                                        self.buffers.last_values)
        return dec

    def _snapshot(self, refs: list[WindowRef], metas: list[WindowMeta], cp: Checkpoint
                  ) -> list[WorkItem]:
        if not refs:
            return []
        windows, lengths = self.buffers.gather(refs)
        mb = self.settings.batch.max_batch
        return [WorkItem(windows[i:i + mb], lengths[i:i + mb], metas[i:i + mb], cp)
                for i in range(0, len(refs), mb)]

    async def _dead_letter(self, tp: TopicPartition, m: Any, r: Rejected, cp: Checkpoint) -> None:
        assert self.producer is not None
        value = m.value if m.value is not None else b""
        truncated = len(value) > DLQ_VALUE_LIMIT
        headers = dead_letter_headers(r.reason, r.detail, tp.topic, tp.partition, m.offset,
                                      m.timestamp, list(m.headers or ()), truncated)
        fut = await self.producer.send(self.settings.kafka.dead_letter_topic,
                                       value=value[:DLQ_VALUE_LIMIT], key=m.key, headers=headers)
        cp.futures.append(fut)
        self.stats.dead_letters[r.reason] += 1
        self.metrics.dead_letters.labels(r.reason).inc()
        log.debug("dead letter", reason=r.reason, detail=r.detail, partition=tp.partition,
                  offset=m.offset)

    def _set_paused(self, paused: bool) -> None:
        assert self.consumer is not None
        parts = self.consumer.assignment() - self._to_warm
        if paused:
            self.consumer.pause(*parts)
            log.warning("inference behind; pausing partitions", pending=self._pending_windows)
        else:
            self.consumer.resume(*parts)
            log.info("inference caught up; resuming partitions", pending=self._pending_windows)
        self._paused = paused
        self.metrics.paused.set(int(paused))

    # -- batch -> infer -> alarm -> publish -------------------------------------------------------

    async def _infer_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._batcher.next_batch()
            if len(items) == 1:
                windows, lengths = items[0].windows, items[0].lengths
            else:
                windows = np.concatenate([it.windows for it in items])
                lengths = np.concatenate([it.lengths for it in items])
            result = await loop.run_in_executor(self._executor, self.engine.run, windows, lengths)
            inferred = time.time()
            self.metrics.batch_size.observe(len(lengths))
            self.metrics.inference_seconds.observe(result.seconds)
            row = 0
            for it in items:
                await self._publish(it, result, row, windows, inferred)
                row += len(it.metas)
                self._pending_windows -= len(it.metas)
                it.checkpoint.pending_windows -= 1
                if it.checkpoint.pending_windows == 0:
                    it.checkpoint.sealed = True
            self.metrics.pending.set(self._pending_windows)
            if self._paused and self._pending_windows < self.settings.batch.max_pending_windows // 2:
                self._set_paused(False)

    async def _publish(self, it: WorkItem, res: InferResult, row0: int, windows: np.ndarray,
                       inferred: float) -> None:
        assert self.producer is not None
        cfg = self.settings.alerts
        topic = self.settings.kafka.alerts_topic
        k = cfg.explain_top_k
        n = len(it.metas)
        probs = res.probs[row0:row0 + n]
        chan_w = res.channel_weights[row0:row0 + n]
        step_w = None if res.step_weights is None else res.step_weights[row0:row0 + n]
        top_ch = np.argsort(-chan_w, axis=1)[:, :k] if k else None
        top_st = np.argsort(-step_w, axis=1)[:, :k] if (k and step_w is not None) else None
        src_topic = self.settings.kafka.readings_topic
        for i, meta in enumerate(it.metas):
            unstable = None
            if cfg.suppress_unstable:
                unstable = unstable_reason(windows[row0 + i], meta.length, self.channels, cfg)
            d = self.alarms.update(meta.strand, meta.ts, probs[i], unstable)
            self.stats.evaluations += 1
            if cfg.publish == "changes" and not d.changed and not d.suppressed:
                continue
            top = max(range(len(d.levels)), key=lambda j: (d.levels[j], probs[i][j]))
            level = d.levels[top]
            steps = [] if top_st is None else [
                {"offset": int(t) - (meta.length - 1), "weight": round(float(step_w[i, t]), 4)}
                for t in top_st[i]]
            chans = [] if top_ch is None else [
                {"channel": self.channels[c], "weight": round(float(chan_w[i, c]), 4)}
                for c in top_ch[i]]
            doc = {
                "v": ALERT_VERSION, "strand": meta.strand, "heat": meta.heat, "ts": meta.ts,
                "seq": meta.seq,
                "source": {"topic": src_topic, "partition": meta.partition,
                           "offset": meta.offset},
                "model_id": self.model_id,
                "probabilities": {t: round(float(p), 5)
                                  for t, p in zip(self.defect_types, probs[i])},
                "levels": {t: LEVELS[lv] for t, lv in zip(self.defect_types, d.levels)},
                "level": LEVELS[level],
                "defect": self.defect_types[top] if level > 0 else None,
                "events": [{"defect": self.defect_types[j], "event": e} for j, e in d.events],
                "suppressed": d.suppressed,
                "explanation": {"steps": steps, "channels": chans},
                "degraded_channels": list(meta.degraded),
                "window": {"length": self.window, "filled": meta.length},
                "timings": {"reading_ts": meta.ts, "record_ts": meta.record_ts,
                            "received_ts": meta.received,
                            "inferred_ts": inferred, "published_ts": time.time()},
            }
            fut = await self.producer.send(topic, value=encode_alert(doc),
                                           key=meta.strand.encode())
            fut.add_done_callback(self._on_alert_ack(meta.ts, LEVELS[level], d.events))
            it.checkpoint.futures.append(fut)
            self.stats.alerts += 1
            self.stats.raised += sum(1 for _, e in d.events if e == "raised")
            if d.events:
                for j, e in d.events:
                    log.info(f"alarm {e}", strand=meta.strand, defect=self.defect_types[j],
                             probability=round(float(probs[i][j]), 3), seq=meta.seq)
        self.metrics.evaluations.inc(n)

    def _on_alert_ack(self, reading_ts: float, level: str, events: list[tuple[int, str]]):
        def done(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                return
            self.metrics.latency.observe(max(0.0, time.time() - reading_ts))
            if events:
                for _, e in events:
                    self.metrics.alerts.labels(level, e).inc()
            else:
                self.metrics.alerts.labels(level, "none").inc()
        return done

    # -- commit ---------------------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            await self._commit_ready()

    async def _commit_ready(self) -> None:
        assert self.consumer is not None
        try:
            ready = self.tracker.ready_offsets()
        except DeliveryFailed:
            self.metrics.commit_failures.inc()
            raise
        self._uncommitted.update(ready)
        assigned = self.consumer.assignment()
        offsets = {tp: off for tp, off in self._uncommitted.items() if tp in assigned}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)  # explicit offsets: never commit() bare
            self.metrics.commits.inc()
            for tp in offsets:
                self._uncommitted.pop(tp, None)
        except KafkaError as exc:
            self.metrics.commit_failures.inc()
            log.warning("offset commit failed; will retry", error=repr(exc))

    async def _drain(self, final: bool = False) -> None:
        """Finish in-flight windows, wait for acks, commit. Bounded by drain_timeout_s."""
        timeout = self.settings.shutdown.drain_timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._pending_windows > 0 and loop.time() < deadline and self._fatal is None:
            await asyncio.sleep(0.005)
        if self.producer is not None:
            await asyncio.wait_for(self.producer.flush(), max(0.1, deadline - loop.time()))
        ok = await self.tracker.wait_all(max(0.0, deadline - loop.time()))
        await self._commit_ready()
        if not ok or self._pending_windows:
            log.warning("drain timed out; uncommitted records will be re-read",
                        pending=self._pending_windows)
        elif final:
            log.info("drained and committed")

    # -- rebalance -----------------------------------------------------------------------------------

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        self.metrics.rebalances.labels("revoked").inc()
        if not revoked:
            return
        log.info("partitions revoked", partitions=sorted(tp.partition for tp in revoked))
        await self._drain()
        self.tracker.forget(revoked)
        for tp in revoked:
            self._uncommitted.pop(tp, None)
        for tp in revoked:
            try:
                self.metrics.lag.remove(str(tp.partition))
            except KeyError:
                pass
        gone = self.buffers.drop_partitions({tp.partition for tp in revoked})
        for s in gone:
            self.alarms.forget(s)
        self._to_warm -= revoked

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        assert self.consumer is not None
        self.metrics.rebalances.labels("assigned").inc()
        self._joined = True
        new = assigned - self._to_warm
        if new:
            log.info("partitions assigned", partitions=sorted(tp.partition for tp in new))
            self._to_warm |= new
            self.consumer.pause(*new)  # not fetched until the buffers are refilled
        self.metrics.warmup_progress.set(0.0 if self._to_warm else 1.0)

    async def _warm_up(self) -> None:
        """Refill buffers of newly assigned partitions from the log; publish nothing."""
        assert self.consumer is not None
        todo = sorted(self._to_warm, key=lambda tp: tp.partition)
        total = len(todo)
        for n, tp in enumerate(todo, 1):
            if tp not in self.consumer.assignment():
                self._to_warm.discard(tp)
                continue
            self._last_progress = time.monotonic()
            target = await self.consumer.position(tp)
            k = self.settings.kafka
            records = await warm_up_partition(
                k, tp, target, self.window, self.settings.warmup.max_rewind_records)
            refs: list[WindowRef] = []
            metas: list[tuple[str, float]] = []
            now = time.monotonic()
            for i in range(0, len(records), 5000):
                chunk = records[i:i + 5000]
                dec = self._decode(chunk)
                start = 0
                while start < len(dec.order):  # nothing is gathered: just refill the rings
                    start = self.buffers.append_batch(dec.strands, dec.heats, dec.ts, dec.seq,
                                                      dec.values, now, tp.partition, start).stop
                self._last_progress = time.monotonic()
            # the last window of every strand initialises its alarm state, so an alarm
            # raised before the restart is not raised again
            for strand, st in self.buffers.strands.items():
                if st.partition == tp.partition and st.filled:
                    length = min(st.filled, self.window)
                    refs.append(WindowRef(st.slot, st.total - 1, length))
                    metas.append((strand, st.last_ts))
            if refs:
                windows, lengths = self.buffers.gather(refs)
                res = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self.engine.run, windows, lengths)
                for (strand, ts), p in zip(metas, res.probs):
                    self.alarms.update(strand, ts, p)
            self.stats.warmup_records += len(records)
            self.metrics.warmup_records.inc(len(records))
            self._to_warm.discard(tp)
            if not self._paused:
                self.consumer.resume(tp)
            self.metrics.warmup_progress.set(n / total)
            log.info("partition warmed up", partition=tp.partition, records=len(records),
                     committed=target, strands=len(self.buffers))

    # -- housekeeping ---------------------------------------------------------------------------------

    async def _housekeeping_loop(self) -> None:
        assert self.consumer is not None
        while True:
            await asyncio.sleep(1.0)
            gone = self.buffers.evict_idle(time.monotonic(), self.settings.buffer.idle_evict_s)
            for s in gone:
                self.alarms.forget(s)
            if gone:
                self.metrics.evictions.inc(len(gone))
                log.info("idle strands evicted", strands=gone)
            self.metrics.strands.set(len(self.buffers))
            self.metrics.ready.set(int(self.ready()))
            for tp in self.consumer.assignment():
                hw = self.consumer.highwater(tp)
                if hw is None:
                    continue
                try:
                    pos = await self.consumer.position(tp)
                except KafkaError:
                    continue
                self.metrics.lag.labels(str(tp.partition)).set(max(0, hw - pos))

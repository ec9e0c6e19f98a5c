"""Prometheus metrics of the daemon, on a registry of its own (several daemons per test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.records_in = Counter("streamer_records_in", "Readings records consumed", registry=r)
        self.dead_letters = Counter("streamer_dead_letters", "Records sent to the dead-letter "
                                    "topic", ["reason"], registry=r)
        self.dropped = Counter("streamer_readings_dropped", "Valid readings not buffered",
                               ["reason"], registry=r)
        self.degraded = Counter("streamer_degraded_readings", "Readings with thermocouples "
                                "filled from their row", registry=r)
        self.window_restarts = Counter("streamer_window_restarts", "Windows restarted after a "
                                       "gap in a strand's readings", registry=r)
        self.evictions = Counter("streamer_strands_evicted", "Idle strands evicted", registry=r)
        self.strands = Gauge("streamer_strands", "Strands with a buffer", registry=r)
        self.lag = Gauge("streamer_consumer_lag", "Records behind the partition end",
                         ["partition"], registry=r)
        self.batch_size = Histogram("streamer_batch_size", "Windows per model call", registry=r,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096))
        self.inference_seconds = Histogram("streamer_inference_seconds", "Model call time",
                                           registry=r, buckets=_LATENCY_BUCKETS)
        self.latency = Histogram("streamer_end_to_end_latency_seconds", "Reading event time to "
                                 "alert acknowledged by the broker", registry=r,
                                 buckets=_LATENCY_BUCKETS)
        self.alerts = Counter("streamer_alerts", "Alerts published", ["level", "event"],
                              registry=r)
        self.evaluations = Counter("streamer_evaluations", "Windows evaluated", registry=r)
        self.pending = Gauge("streamer_pending_windows", "Windows waiting for the model",
                             registry=r)
        self.paused = Gauge("streamer_paused", "1 while partitions are paused (backpressure)",
                            registry=r)
        self.warmup_progress = Gauge("streamer_warmup_progress", "Fraction of assigned "
                                     "partitions warmed up", registry=r)
        self.warmup_records = Counter("streamer_warmup_records", "Records re-read to refill "
                                      "buffers", registry=r)
        self.rebalances = Counter("streamer_rebalances", "Partition assignments and revocations",
                                  ["kind"], registry=r)
        self.commits = Counter("streamer_commits", "Offset commits", registry=r)
        self.commit_failures = Counter("streamer_commit_failures", "Failed offset commits",
                                       registry=r)
        self.ready = Gauge("streamer_ready", "1 when ready (model, assignment, warm-up)",
                           registry=r)

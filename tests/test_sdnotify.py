"""The systemd notify protocol against a real AF_UNIX datagram socket, as systemd listens."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.ops.sdnotify import SystemdNotifier, watchdog_loop


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound in a tmp dir, as systemd's NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    try:
        yield sock, str(path)
    finally:
        sock.close()


def drain(sock: socket.socket) -> list[str]:
    """All datagrams queued now."""
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2.0)
    return out


def test_messages_arrive_verbatim(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    n = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready()
    assert n.status("warming up: 3/12 partitions")
    assert n.watchdog()
    assert n.stopping()
    got = [sock.recv(4096).decode() for _ in range(4)]
    assert got == ["READY=1", "STATUS=warming up: 3/12 partitions", "WATCHDOG=1", "STOPPING=1"]
    n.close()


def test_status_is_one_line(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    n = SystemdNotifier({"NOTIFY_SOCKET": path})
    n.status("broker down\nretrying")
    assert sock.recv(4096) == b"STATUS=broker down retrying"


def test_abstract_namespace_socket() -> None:
    name = f"streamer-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind("\0" + name)
        sock.settimeout(2.0)
        n = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
        assert n.enabled
        assert n.ready()
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_unset_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = SystemdNotifier()
    assert not n.enabled
    assert n.ready() is False
    assert n.status("x") is False
    assert n.watchdog() is False
    assert n.stopping() is False
    assert n.watchdog_interval_s() is None


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch,
                                     listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    SystemdNotifier().ready()
    assert sock.recv(4096) == b"READY=1"


def test_send_errors_never_raise_and_are_logged_once(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    n = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert n.enabled
    with caplog.at_level(logging.WARNING, logger="streamer.ops.sdnotify"):
        assert n.ready() is False
        assert n.watchdog() is False
        assert n.stopping() is False
    warnings = [r for r in caplog.records if r.name == "streamer.ops.sdnotify"]
    assert len(warnings) == 1
    assert "systemd notification failed" in warnings[0].getMessage()


def test_not_a_unix_address_disables(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="streamer.ops.sdnotify"):
        n = SystemdNotifier({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not n.enabled
    assert n.ready() is False
    assert any("not an AF_UNIX address" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 30.0),  # WatchdogSec=30 in deploy/systemd
        ({"WATCHDOG_USEC": "500000"}, 0.5),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "{pid}"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "{other}"}, None),  # inherited, not ours
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": ""}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    env = {k: v.format(pid=os.getpid(), other=os.getpid() + 1) for k, v in env.items()}
    n = SystemdNotifier({"NOTIFY_SOCKET": "/run/systemd/notify", **env})
    assert n.watchdog_interval_s() == expected


async def test_watchdog_loop_pings_only_while_healthy(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    # 0.2 s watchdog -> a keep-alive every 0.1 s
    n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000",
                         "WATCHDOG_PID": str(os.getpid())})
    healthy = True
    task = asyncio.create_task(watchdog_loop(n, lambda: healthy))
    try:
        await asyncio.sleep(0.45)
        pings = drain(sock)
        assert 2 <= len(pings) <= 6  # ~4; slack for a busy CI machine
        assert set(pings) == {"WATCHDOG=1"}

        healthy = False
        drain(sock)  # the check and the send happen in one step: nothing after the flip
        await asyncio.sleep(0.4)
        assert drain(sock) == []  # stuck: systemd would now restart the unit

        healthy = True
        await asyncio.sleep(0.3)
        assert len(drain(sock)) >= 2  # recovered before the timeout: pings resume
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_watchdog_loop_treats_a_raising_check_as_unhealthy(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    n = SystemdNotifier({"NOTIFY_SOCKET": path})

    def broken() -> bool:
        raise RuntimeError("consumer gone")

    task = asyncio.create_task(watchdog_loop(n, broken, interval_s=0.1))
    await asyncio.sleep(0.25)
    assert not task.done()  # the loop survives the exception
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert drain(sock) == []


async def test_watchdog_loop_returns_without_watchdog(listener: tuple[socket.socket, str]) -> None:
    _, path = listener
    # NOTIFY_SOCKET but no WatchdogSec=: nothing to do
    await asyncio.wait_for(watchdog_loop(SystemdNotifier({"NOTIFY_SOCKET": path}), lambda: True),
                           timeout=1)
    # not under systemd at all
    await asyncio.wait_for(watchdog_loop(SystemdNotifier({}), lambda: True, interval_s=1.0),
                           timeout=1)

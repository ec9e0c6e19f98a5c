"""The systemd notify protocol (``sd_notify(3)``), small and dependency-free.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (a ``AF_UNIX`` datagram socket: a
filesystem path, or an abstract-namespace name written with a leading ``@``) and, when
``WatchdogSec=`` is set, ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``). The daemon sends:

- ``READY=1`` once the model is loaded, partitions are assigned and buffers are warm;
- ``STATUS=...`` free text shown by ``systemctl status``;
- ``WATCHDOG=1`` at least every ``WATCHDOG_USEC``, and only while it makes progress, so
  that systemd restarts a daemon that is alive but stuck (:func:`watchdog_loop`);
- ``STOPPING=1`` when the drain at SIGTERM begins.

Why not the PyPI ``sdnotify`` package: it is unmaintained since 2017 and offers no parsing
of ``WATCHDOG_USEC``/``WATCHDOG_PID``; the protocol is one ``sendto()`` of a datagram, so a
few dozen lines here cost less than a dependency.

Outside systemd (``NOTIFY_SOCKET`` unset: a terminal, a container, Kubernetes) every call
is a no-op. A failed send never raises: it is logged once per notifier and the daemon
goes on, since losing a status line must never stop the monitoring of a caster.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

__all__ = ["SystemdNotifier", "watchdog_loop"]

log = logging.getLogger(__name__)

# Bound on a blocking send: systemd drains its socket quickly; a full queue must not hang
# the event loop for long.
_SEND_TIMEOUT_S = 1.0


class SystemdNotifier:
    """Sends ``sd_notify`` messages to ``$NOTIFY_SOCKET``; a no-op when it is unset.

    ``environ`` defaults to ``os.environ`` (read once, at construction); tests pass a dict.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._env = dict(env)
        self._address = self._parse_address(env.get("NOTIFY_SOCKET", ""))
        self._sock: socket.socket | None = None
        self._warned = False

    @staticmethod
    def _parse_address(raw: str) -> str | None:
        if not raw:
            return None
        if raw.startswith("@"):
            # Abstract namespace: the leading '@' stands for a NUL byte.
            return "\0" + raw[1:]
        if raw.startswith("/"):
            return raw
        # systemd >= 254 may also pass "vsock:CID:PORT" (VMs); not used on plant hosts.
        log.warning("NOTIFY_SOCKET=%r is not an AF_UNIX address; systemd notifications off", raw)
        return None

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens (``NOTIFY_SOCKET`` set)."""
        return self._address is not None

    def notify(self, message: str) -> bool:
        """Send one raw message (``KEY=VALUE`` lines). True if it was handed to the socket."""
        if self._address is None:
            return False
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.settimeout(_SEND_TIMEOUT_S)
                self._sock = sock
            self._sock.sendto(message.encode("utf-8"), self._address)
            return True
        except (OSError, ValueError) as exc:
            if not self._warned:
                self._warned = True
                log.warning("systemd notification failed (further failures not logged): %s: %s",
                            type(exc).__name__, exc)
            return False

    def ready(self) -> bool:
        """``READY=1``: start-up (model, assignment, warm-up) is complete."""
        return self.notify("READY=1")

    def status(self, text: str) -> bool:
        """``STATUS=...``: one line for ``systemctl status`` (newlines become spaces)."""
        return self.notify("STATUS=" + " ".join(text.splitlines()))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: keep-alive; send only while the daemon makes progress."""
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        """``STOPPING=1``: the drain has begun."""
        return self.notify("STOPPING=1")

    def watchdog_interval_s(self) -> float | None:
        """The watchdog timeout in seconds (``WATCHDOG_USEC``), or None if not armed.

        None as well when ``WATCHDOG_PID`` names another process (the variable was
        inherited, the watchdog is not ours) or when the value is not a positive integer.
        """
        raw_usec = self._env.get("WATCHDOG_USEC")
        if not raw_usec:
            return None
        raw_pid = self._env.get("WATCHDOG_PID")
        if raw_pid:
            try:
                if int(raw_pid) != os.getpid():
                    return None
            except ValueError:
                return None
        try:
            usec = int(raw_usec)
        except ValueError:
            return None
        return usec / 1_000_000 if usec > 0 else None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __repr__(self) -> str:
        target = None if self._address is None else self._address.replace("\0", "@", 1)
        return f"SystemdNotifier(socket={target!r})"


async def watchdog_loop(
    notifier: SystemdNotifier,
    is_healthy: Callable[[], bool],
    interval_s: float | None = None,
) -> None:
    """Send ``WATCHDOG=1`` every half watchdog interval while ``is_healthy()`` is true.

    ``is_healthy`` is the daemon's liveness ("the loop and the consumer make progress").
    While it is false (or raises) no keep-alive is sent, so systemd's ``WatchdogSec=``
    expires and the unit is restarted (``Restart=on-failure`` covers watchdog timeouts).
    ``interval_s`` overrides the interval taken from ``WATCHDOG_USEC``. Returns at once
    when there is no watchdog (not under systemd, or ``WatchdogSec=`` unset); otherwise
    runs until cancelled.
    """
    timeout = interval_s if interval_s is not None else notifier.watchdog_interval_s()
    if not notifier.enabled or timeout is None or timeout <= 0:
        return
    period = timeout / 2
    was_healthy = True
    while True:
        try:
            healthy = bool(is_healthy())
        except Exception:  # a broken health check must read as unhealthy, not kill the loop
            log.exception("health check raised; withholding the systemd watchdog keep-alive")
            healthy = False
        if healthy:
            notifier.watchdog()
            if not was_healthy:
                log.info("healthy again; systemd watchdog keep-alives resumed")
        elif was_healthy:
            log.warning("not healthy; withholding systemd watchdog keep-alives "
                        "(systemd restarts the service after %.0f s)", timeout)
        was_healthy = healthy
        await asyncio.sleep(period)

"""deploy/systemd: `systemd-analyze verify` and `security`, and cross-checks with the code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streamer.config import Settings, load_settings
from streamer.ops.sdnotify import SystemdNotifier

ROOT = Path(__file__).resolve().parents[1]
SYSTEMD = ROOT / "deploy" / "systemd"
UNIT = SYSTEMD / "streamer.service"
INSTALLED_BIN = "/opt/streamer/.venv/bin/streamer"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (keys may repeat), comments and blanks dropped."""
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out.setdefault(section, {})
            continue
        assert section is not None, f"key outside a section: {line}"
        key, _, value = line.partition("=")
        out[section].setdefault(key.strip(), []).append(value.strip())
    return out


def seconds(value: str) -> float:
    """systemd time span ('45s', '10min', '30') in seconds."""
    total = 0.0
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "ms": 0.001}
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(num) * units[unit]
    return total


UNIT_KEYS = parse_unit(UNIT.read_text())
SERVICE = {k: v[-1] for k, v in UNIT_KEYS["Service"].items()}


def streamer_bin() -> Path:
    """The `streamer` console script of the interpreter running the tests."""
    found = Path(sys.executable).parent / "streamer"
    if not found.exists():
        which = shutil.which("streamer")
        if which is None:
            pytest.skip("no `streamer` console script installed")
        found = Path(which)
    return found


def installable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at a binary that exists on this machine.

    `systemd-analyze verify` checks that ExecStart's binary exists; the unit names the
    documented install path /opt/streamer/.venv, which this machine does not have.
    """
    text = UNIT.read_text()
    assert text.count(f"ExecStart={INSTALLED_BIN} ") == 1
    copy = tmp_path / "streamer.service"
    copy.write_text(text.replace(f"ExecStart={INSTALLED_BIN} ", f"ExecStart={streamer_bin()} "))
    return copy


def analyze(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, check=False)


@needs_analyze
def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    unit = installable_copy(tmp_path)
    res = analyze("verify", str(unit))
    assert res.returncode == 0, res.stderr
    # verify exits 0 even for unknown keys; it only warns. Any line about our unit fails.
    noise = [line for line in (res.stdout + res.stderr).splitlines() if "streamer" in line]
    assert noise == []
    # ... and this check does see a mistake:
    unit.write_text(unit.read_text().replace("[Service]\n", "[Service]\nWatchdogSecs=30\n"))
    res = analyze("verify", str(unit))
    assert "Unknown key 'WatchdogSecs'" in res.stderr


@needs_analyze
def test_gpu_drop_in_verifies(tmp_path: Path) -> None:
    unit = installable_copy(tmp_path)
    dropin = tmp_path / "streamer.service.d"
    dropin.mkdir()
    shutil.copy(SYSTEMD / "gpu.conf.example", dropin / "gpu.conf")
    # SYSTEMD_UNIT_PATH makes verify load drop-ins next to the unit ("" keeps the defaults).
    res = analyze("verify", str(unit), env={"SYSTEMD_UNIT_PATH": f"{tmp_path}:"})
    assert res.returncode == 0, res.stderr
    assert [ln for ln in (res.stdout + res.stderr).splitlines() if "streamer" in ln] == []
    keys = parse_unit((SYSTEMD / "gpu.conf.example").read_text())["Service"]
    assert "STREAMER_MODEL__DEVICE=cuda" in keys["Environment"]
    assert keys["PrivateDevices"] == ["no"]
    assert any(v.startswith("/dev/nvidiactl") for v in keys["DeviceAllow"])


@needs_analyze
def test_security_exposure_stays_low(tmp_path: Path) -> None:
    unit = installable_copy(tmp_path)
    res = analyze("security", "--offline=true", "--threshold=20", str(unit))
    m = re.search(r"Overall exposure level for streamer\.service: (\d+\.\d+)", res.stdout)
    if m is None:
        pytest.skip(f"this systemd-analyze cannot score offline: {res.stderr.strip()[:200]}")
    # 1.4 ("OK") when written; the remaining exposure is the network, the JIT (below) and
    # @resources syscalls torch needs.
    assert float(m.group(1)) <= 2.0, res.stdout


def test_notify_protocol_and_lifecycle() -> None:
    assert SERVICE["Type"] == "notify"
    assert SERVICE["NotifyAccess"] == "main"
    assert SERVICE["Restart"] == "on-failure"
    assert SERVICE["KillSignal"] == "SIGTERM"
    drain = max(Settings().shutdown.drain_timeout_s, example_settings().shutdown.drain_timeout_s)
    assert seconds(SERVICE["TimeoutStopSec"]) >= drain + 20
    # READY=1 only after warm-up: the start timeout covers it like the k8s startupProbe.
    assert seconds(SERVICE["TimeoutStartSec"]) >= 600
    # The daemon pings every WatchdogSec/2, as read back by the notifier from WATCHDOG_USEC.
    watchdog = seconds(SERVICE["WatchdogSec"])
    assert watchdog == 30
    n = SystemdNotifier({"NOTIFY_SOCKET": "/run/systemd/notify",
                         "WATCHDOG_USEC": str(int(watchdog * 1_000_000))})
    assert n.watchdog_interval_s() == watchdog


def test_exec_start_runs_a_real_command_with_the_installed_config() -> None:
    from streamer.cli import cli

    argv = SERVICE["ExecStart"].split()
    assert argv[0] == INSTALLED_BIN
    assert argv[1] in cli.lazy_subcommands and argv[1] == "run"
    assert argv[2:] == ["--config", "/etc/streamer/streamer.yaml"]
    assert SERVICE["EnvironmentFile"] == "-/etc/streamer/streamer.env"


def test_hardening() -> None:
    expected = {
        "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
        "ProtectHome": "yes", "PrivateTmp": "yes", "CapabilityBoundingSet": "",
        "AmbientCapabilities": "", "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes", "LockPersonality": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        # deliberately off, see test_memory_deny_write_execute_breaks_torch
        "MemoryDenyWriteExecute": "no",
    }
    for key, value in expected.items():
        assert SERVICE.get(key) == value, key
    assert "StateDirectory" not in SERVICE, "the daemon keeps no state on disk"
    # ... and the unit says why, right above the setting.
    assert "oneDNN" in UNIT.read_text().split("MemoryDenyWriteExecute=no")[0][-600:]


def example_settings() -> Settings:
    return load_settings(SYSTEMD / "streamer.yaml.example")


def test_example_config_loads_and_holds_no_secrets() -> None:
    s = example_settings()
    assert s.http.port == Settings().http.port
    assert s.kafka.sasl_password is None and s.kafka.ssl_key_password is None
    assert s.log.format == "json"  # journald


def test_env_example_is_secret_material_only(tmp_path: Path) -> None:
    text = (SYSTEMD / "streamer.env.example").read_text()
    assert "0600" in text
    names = re.findall(r"^#?(STREAMER_[A-Z0-9_]+)=", text, flags=re.MULTILINE)
    assert {"STREAMER_KAFKA__SASL_USERNAME", "STREAMER_KAFKA__SASL_PASSWORD"} <= set(names)
    # Uncommented, the example's values load (env beats the YAML).
    env = dict(re.findall(r"^#?(STREAMER_[A-Z0-9_]+)=(.*)$", text, flags=re.MULTILINE))
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text("kafka:\n  security_protocol: SASL_SSL\n  sasl_mechanism: SCRAM-SHA-512\n")
    mp = pytest.MonkeyPatch()
    try:
        for k, v in env.items():
            mp.setenv(k, v)
        s = load_settings(yaml_path)
    finally:
        mp.undo()
    assert s.kafka.sasl_password is not None
    assert s.kafka.sasl_password.get_secret_value() == env["STREAMER_KAFKA__SASL_PASSWORD"]


_MDWE_PROBE = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
if sys.argv[1] == "on":
    # PR_SET_MDWE=65, PR_MDWE_REFUSE_EXEC_GAIN=1: what MemoryDenyWriteExecute=yes enforces.
    if libc.prctl(65, 1, 0, 0, 0) != 0:
        print("unsupported"); sys.exit(0)
import torch
torch.set_num_threads(1)
lstm = torch.nn.LSTM(12, 32, num_layers=2, batch_first=True)
try:
    with torch.inference_mode():
        lstm(torch.randn(4, 60, 12))
    print("ok")
except RuntimeError as exc:
    print("failed:", exc)
"""


@pytest.mark.slow
def test_memory_deny_write_execute_breaks_torch() -> None:
    """Why the unit keeps MemoryDenyWriteExecute=no: oneDNN's JIT needs W+X memory.

    Runs a torch LSTM in a subprocess with and without the kernel's "memory deny write
    execute" (prctl PR_SET_MDWE, Linux >= 6.3). If this starts passing with MDWE on (a
    torch without JIT kernels), the unit can turn MemoryDenyWriteExecute=yes on.
    """
    pytest.importorskip("torch")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def probe(mode: str) -> str:
        res = subprocess.run([sys.executable, "-c", _MDWE_PROBE, mode], capture_output=True,
                             text=True, timeout=120, env=env, check=False)
        return res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr

    assert probe("off") == "ok"
    on = probe("on")
    if on == "unsupported":
        pytest.skip("kernel without PR_SET_MDWE (Linux < 6.3)")
    assert on.startswith("failed:"), on

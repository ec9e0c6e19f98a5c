"""Cross-checks between deploy/, docs/operations.md and the code.

Every ``STREAMER_*`` name, settings key, CLI command, metric, probe path and alert field
that the deployment files and the operations guide mention must exist in the code, so that
a rename in the daemon breaks a test instead of a plant's deployment.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from streamer.config import CONFIG_FILE_ENV, Settings

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "operations.md"
DOC_TEXT = DOC.read_text()
DEPLOY_FILES = sorted(p for p in (ROOT / "deploy").rglob("*") if p.is_file())
TEXT_FILES = [*DEPLOY_FILES, DOC, ROOT / ".dockerignore"]

# Names the kubelet would inject for a Service called "streamer"; mentioned only to explain
# why the StatefulSet sets enableServiceLinks: false.
KUBELET_INJECTED = {"STREAMER_SERVICE_HOST", "STREAMER_PORT"}

# The metrics the daemon's owner committed to export (the issue), all documented.
PROMISED_METRICS = {
    "streamer_records_in_total", "streamer_dead_letters_total",
    "streamer_readings_dropped_total", "streamer_consumer_lag", "streamer_batch_size",
    "streamer_inference_seconds", "streamer_end_to_end_latency_seconds",
    "streamer_alerts_total", "streamer_warmup_progress", "streamer_rebalances_total",
    "streamer_commit_failures_total", "streamer_ready",
}


def env_field(name: str) -> str | None:
    """Dotted settings field for a STREAMER_* variable, or None if there is none."""
    if not name.startswith("STREAMER_"):
        return None
    parts = name.removeprefix("STREAMER_").lower().split("__")
    model: type[BaseModel] = Settings
    for i, part in enumerate(parts):
        fields = model.model_fields
        if part not in fields:
            return None
        ann = fields[part].annotation
        last = i == len(parts) - 1
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            if last:
                return None  # a whole section: not how we set things
            model = ann
        elif not last:
            return None
    return ".".join(parts)


def test_env_walker() -> None:
    assert env_field("STREAMER_KAFKA__BOOTSTRAP_SERVERS") == "kafka.bootstrap_servers"
    assert env_field("STREAMER_SHUTDOWN__DRAIN_TIMEOUT_S") == "shutdown.drain_timeout_s"
    assert env_field("STREAMER_KAFKA") is None
    assert env_field("STREAMER_KAFKA_BOOTSTRAP_SERVERS") is None
    assert env_field("STREAMER_KAFKA__NOPE") is None
    assert env_field("STREAMER_HTTP__PORT__X") is None


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_streamer_env_name_is_a_setting(path: Path) -> None:
    names = set(re.findall(r"\bSTREAMER_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    bad = {n for n in names - KUBELET_INJECTED - {CONFIG_FILE_ENV} if env_field(n) is None}
    assert not bad, f"not a settings field: {sorted(bad)}"


def test_env_names_are_found_at_all() -> None:
    """Guards the scan above against matching nothing."""
    text = "".join(p.read_text() for p in TEXT_FILES)
    for name in ("STREAMER_KAFKA__GROUP_INSTANCE_ID", "STREAMER_KAFKA__SASL_PASSWORD",
                 "STREAMER_MODEL__DEVICE", "STREAMER_HTTP__PORT"):
        assert name in text


def settings_keys(text: str) -> set[str]:
    sections = set(Settings.model_fields)
    keys = set(re.findall(r"`([a-z_]+\.[a-z_]+)(?=[`:= ])", text))
    return {k for k in keys if k.split(".")[0] in sections}


def test_settings_keys_in_the_guide_exist() -> None:
    keys = settings_keys(DOC_TEXT)
    assert {"warmup.max_rewind_records", "shutdown.drain_timeout_s"} <= keys
    bad = {k for k in keys if env_field("STREAMER_" + k.upper().replace(".", "__")) is None}
    assert not bad, sorted(bad)


def test_config_files_in_deploy_load() -> None:
    from streamer.config import load_settings

    files = [ROOT / "deploy/systemd/streamer.yaml.example",
             ROOT / "deploy/kubernetes/base/streamer.yaml"]
    for f in files:
        s = load_settings(f)
        assert s.http.port == Settings().http.port


def _code_spans(text: str) -> list[str]:
    """Shell blocks and inline code (not diagrams)."""
    blocks = re.findall(r"```(?:sh|bash|console)\n(.*?)```", text, flags=re.DOTALL)
    rest = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return blocks + re.findall(r"`([^`\n]+)`", rest)


def _commands(prog: str, spans: list[str]) -> set[str]:
    return set(re.findall(rf"(?:^|[\s/]){re.escape(prog)} ([a-z][a-z-]*)\b", "\n".join(spans),
                          flags=re.MULTILINE))


def test_cli_commands_named_in_docs_and_deploy_exist() -> None:
    from simulators.cli import cli as sim_cli
    from streamer.cli import cli

    # (the command lines of the unit, the Dockerfile and compose are checked where they are
    # parsed: test_deploy_systemd.py, test_deploy_docker.py, test_deploy_kubernetes.py)
    spans = _code_spans(DOC_TEXT) + _code_spans((ROOT / "deploy/README.md").read_text())
    used = _commands("streamer", spans)
    assert {"run", "config", "bench"} <= used
    assert used <= set(cli.lazy_subcommands), used - set(cli.lazy_subcommands)
    sim_used = _commands("caster-sim", spans)
    assert sim_used <= set(sim_cli.lazy_subcommands), sim_used


def test_subcommands_named_in_docs_exist() -> None:
    """`streamer config show`, `streamer model speed`: the second word, for command groups."""
    import click

    from streamer.cli import cli

    spans = "\n".join(_code_spans(DOC_TEXT) + _code_spans((ROOT / "deploy/README.md").read_text()))
    pairs = set(re.findall(r"(?:^|[\s/])streamer ([a-z][a-z-]*) ([a-z][a-z-]*)\b", spans,
                           flags=re.MULTILINE))
    ctx = click.Context(cli)
    checked = 0
    for group_name, sub in pairs:
        group = cli.get_command(ctx, group_name)
        if isinstance(group, click.Group):
            assert sub in group.commands, f"streamer {group_name} {sub}"
            checked += 1
    assert checked >= 2  # config show, model speed


# ---------------------------------------------------------------------------------- metrics


def _base_metric(name: str) -> str:
    return re.sub(r"_(bucket|sum|count)$", "", name)


def documented_metrics() -> set[str]:
    return {_base_metric(n) for n in re.findall(r"\bstreamer_[a-z0-9_]*[a-z0-9]\b", DOC_TEXT)}


def exported_metrics() -> set[str]:
    try:
        from streamer.ops.metrics import Metrics
    except ImportError as exc:
        pytest.skip(f"daemon metrics not importable: {exc}")
    out = set()
    for family in Metrics().registry.collect():
        out.add(family.name + "_total" if family.type == "counter" else family.name)
    return out


def test_promised_metrics_are_documented() -> None:
    assert PROMISED_METRICS <= documented_metrics()


def test_documented_metrics_are_exported_and_all_are_documented() -> None:
    exported = exported_metrics()
    documented = documented_metrics()
    assert documented - exported == set(), "documented but not exported"
    assert exported - documented == set(), "exported but not in docs/operations.md"


def test_alerting_rules_use_documented_metrics() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/streamer.rules.yml").read_text())
    used = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            used |= {_base_metric(n) for n in re.findall(r"\bstreamer_[a-z0-9_]+", rule["expr"])}
            assert rule["labels"]["severity"] in ("critical", "warning")
    assert used and used <= documented_metrics(), used - documented_metrics()


def test_alerting_rules_parse_as_promql() -> None:
    promql = pytest.importorskip("promql_parser", reason="pip install promql-parser")
    rules = yaml.safe_load((ROOT / "deploy/prometheus/streamer.rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            promql.parse(rule["expr"])  # raises ValueError on a syntax error
    with pytest.raises(ValueError):
        promql.parse("sum(rate(streamer_records_in_total[5m])")


# ---------------------------------------------------------------------------- HTTP endpoints


async def test_probe_paths_are_served_by_the_daemon() -> None:
    """What the manifests probe (/healthz, /readyz, /metrics) is what the daemon serves."""
    try:
        from streamer.ops.http import bound_port, start_http
        from streamer.ops.metrics import Metrics
    except ImportError as exc:
        pytest.skip(f"daemon HTTP module not importable: {exc}")
    import aiohttp

    runner = await start_http("127.0.0.1", 0, Metrics(), lambda: True, lambda: False)
    try:
        base = f"http://127.0.0.1:{bound_port(runner)}"
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/healthz") as r:
                assert r.status == 200
            async with session.get(base + "/readyz") as r:
                assert r.status == 503  # not ready: the readinessProbe fails
            async with session.get(base + "/metrics") as r:
                assert r.status == 200
                assert "streamer_ready" in await r.text()
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------------- alert format


def _schema(name: str) -> dict[str, Any]:
    path = ROOT / "streamer/formats/schemas" / name
    if not path.exists():
        pytest.skip(f"{path.name} not written yet")
    return json.loads(path.read_text())


def test_guide_example_alert_is_valid() -> None:
    import jsonschema

    schema = _schema("alert.schema.json")
    (example,) = re.findall(r"```json\n(.*?)```", DOC_TEXT, flags=re.DOTALL)
    jsonschema.validate(json.loads(example), schema)


def test_guide_documents_every_alert_field() -> None:
    schema = _schema("alert.schema.json")
    section = DOC_TEXT.split("## The alert record", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
    assert rows == set(schema["properties"]), (
        f"missing: {set(schema['properties']) - rows}, extra: {rows - set(schema['properties'])}")
    assert "(`strand`, `seq`, `model_id`)" in section  # the dedup key
    # nested objects: every sub-field named in the field's row
    for name, prop in schema["properties"].items():
        row = re.search(rf"^\| `{name}` \|(.*)$", section, flags=re.MULTILINE).group(1)
        for sub in prop.get("properties", {}):
            assert f"`{sub}`" in row, f"{name}.{sub} not described"


def test_guide_names_the_dead_letter_headers() -> None:
    try:
        from streamer.publish.producer import dead_letter_headers
    except ImportError as exc:
        pytest.skip(f"producer not importable: {exc}")
    headers = dead_letter_headers("schema", "x", "caster.readings", 0, 1, 2, [], True)
    for name, _ in headers:
        assert f"`{name}`" in DOC_TEXT, name

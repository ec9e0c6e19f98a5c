"""Daemon configuration: defaults < YAML file < ``STREAMER_`` environment < CLI flags.

Nested fields use ``__`` in the environment: ``STREAMER_KAFKA__BOOTSTRAP_SERVERS=k1:9092``.
A wrong value stops start-up with a :class:`ConfigError` that names the field
(``kafka.sasl_mechanism: Input should be 'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'``).
Secrets are ``SecretStr``: masked in ``streamer config show`` and in logs.
"""

from __future__ import annotations

import contextvars
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from streamer.validation_errors import field_errors
from streamer.yaml_file import read_yaml_mapping

CONFIG_FILE_ENV = "STREAMER_CONFIG"


class ConfigError(Exception):
    """A configuration value, file or combination is invalid; the message names the field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class KafkaSettings(_Section):
    bootstrap_servers: str = "localhost:9092"
    client_id: str = "streamer"
    group_id: str = "streamer"
    # Static membership (KIP-345): a stable id per replica means a restart within
    # session_timeout_ms does not rebalance the group. Kubernetes: the pod name.
    group_instance_id: str | None = None
    # Where a group with no committed offset starts; warm-up still refills buffers from
    # before that point, so "latest" loses no window, it only skips publishing old data.
    auto_offset_reset: Literal["earliest", "latest"] = "latest"
    readings_topic: str = "caster.readings"
    alerts_topic: str = "caster.alerts"
    dead_letter_topic: str = "caster.readings.dlq"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    session_timeout_ms: int = Field(10_000, ge=1_000)
    heartbeat_interval_ms: int = Field(3_000, ge=100)
    max_poll_interval_ms: int = Field(300_000, ge=1_000)
    fetch_max_records: int = Field(5_000, ge=1, description="getmany() max_records")
    fetch_timeout_ms: int = Field(100, ge=0, description="getmany() timeout")
    fetch_max_wait_ms: int = Field(20, ge=0, description="broker-side wait for data per fetch; low = low latency")
    connect_retry_max_s: float = Field(300.0, ge=0, description="give up connecting after this")
    idempotence: bool = Field(True, description="try the idempotent producer; fall back if refused")
    producer_linger_ms: int = Field(2, ge=0)

    @model_validator(mode="after")
    def _sasl_complete(self) -> "KafkaSettings":
        if self.security_protocol.startswith("SASL_"):
            if self.sasl_mechanism is None:
                raise ValueError("sasl_mechanism is required when security_protocol is SASL_*")
            if not self.sasl_username or self.sasl_password is None:
                raise ValueError("sasl_username and sasl_password are required for SASL")
        return self


class ModelSettings(_Section):
    path: Path | None = Field(None, description="checkpoint; None = the shipped one chosen by `shipped`")
    shipped: Literal["single", "ensemble"] = Field(
        "single", description="shipped model when path is unset: single (fastest) or ensemble "
        "(three runs averaged: fewer false alarms, ~3x the inference cost)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    torch_threads: int = Field(0, ge=0, description="0 = leave torch's default")


class BufferSettings(_Section):
    hop: int = Field(1, ge=1, description="evaluate a strand every `hop` readings")
    min_fill: int = Field(60, ge=1, description="readings a window needs before it is evaluated")
    idle_evict_s: float = Field(900.0, gt=0, description="drop a strand's buffer after this silence")
    gap_restart_s: float = Field(10.0, gt=0, description="a gap in event time longer than this restarts the window")


class BatchSettings(_Section):
    max_batch: int = Field(512, ge=1)
    max_delay_ms: float = Field(0.0, ge=0, description="wait this long to fill a batch; start near 0")
    max_pending_windows: int = Field(20_000, ge=1, description="pause partitions above this backlog")


class AlertSettings(_Section):
    watch: float = Field(0.5, gt=0, lt=1)
    warning: float = Field(0.7, gt=0, lt=1)
    alarm: float = Field(0.8, gt=0, lt=1)
    # Per defect type, overrides `alarm` (and the checkpoint's operating thresholds). Keys are
    # checked against the loaded model's defect types at start-up (streamer.alarm.thresholds);
    # a type's watch/warning are lowered to its alarm threshold when they are above it.
    alarm_by_type: dict[str, Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=dict, description="alarm threshold per defect type, e.g. {sticker: 0.7}")
    hysteresis: float = Field(0.05, ge=0, lt=0.5, description="a level clears below threshold - hysteresis")
    # Unset: the checkpoint's operating_thresholds delays (chosen with its thresholds), else 0.
    # Setting it applies to every type; on_delay_by_type outranks it per type (keys checked
    # at start-up against the model's types; streamer.alarm.levels, streamer.alarm.thresholds).
    on_delay_s: float | None = Field(None, ge=0, le=60, description="raise only once p has stayed >= the alarm threshold this long (event time); unset: the checkpoint's, else 0")
    on_delay_by_type: dict[str, Annotated[float, Field(ge=0, le=60)]] = Field(
        default_factory=dict, description="on-delay per defect type, seconds, e.g. {slag: 5}")
    repeat_suppression_s: float = Field(300.0, ge=0, description="no second 'raised' for the same strand and type within this")
    publish: Literal["all", "changes"] = "all"
    explain_top_k: int = Field(3, ge=0, le=32)
    suppress_unstable: bool = Field(False, description="no breakout alarm while the process is unstable (DOMAIN.md)")
    min_cast_length_m: float = Field(2.0, ge=0)
    speed_min_m_min: float = Field(0.2, ge=0)
    speed_max_m_min: float = Field(10.0, gt=0)
    level_swing_mm: float = Field(20.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "AlertSettings":
        if not (self.watch <= self.warning <= self.alarm):
            raise ValueError("thresholds must satisfy watch <= warning <= alarm")
        return self


class WarmupSettings(_Section):
    max_rewind_records: int = Field(200_000, ge=0, description="bound on records re-read per partition at assignment")


class HttpSettings(_Section):
    host: str = "0.0.0.0"
    port: int = Field(9108, ge=0, le=65535, description="/metrics, /healthz, /readyz; 0 = off")


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class ShutdownSettings(_Section):
    drain_timeout_s: float = Field(20.0, gt=0, description="bound on drain at SIGTERM/revoke")


_yaml_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("yaml_file", default=None)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STREAMER_", env_nested_delimiter="__", extra="forbid",
        validate_assignment=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    model: ModelSettings = ModelSettings()
    buffer: BufferSettings = BufferSettings()
    batch: BatchSettings = BatchSettings()
    alerts: AlertSettings = AlertSettings()
    warmup: WarmupSettings = WarmupSettings()
    http: HttpSettings = HttpSettings()
    log: LogSettings = LogSettings()
    shutdown: ShutdownSettings = ShutdownSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _yaml_file.get()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"kafka.bootstrap_servers": x} -> {"kafka": {"bootstrap_servers": x}}; None dropped."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None:
            continue
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def load_settings(
    config_file: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Effective settings. ``overrides`` are CLI flags as dotted keys (None = not given)."""
    path = config_file or os.environ.get(CONFIG_FILE_ENV) or None
    if path is not None:
        path = Path(path)
        # checked here for one clear line; the settings source below reads it again
        read_yaml_mapping(path, ConfigError, "config file",
                          not_mapping="must be a mapping of sections")
    token = _yaml_file.set(path)
    try:
        return Settings(**_nest(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {field_errors(exc)}") from None
    finally:
        _yaml_file.reset(token)


def masked_dict(settings: Settings) -> dict[str, Any]:
    """JSON-able effective config; every secret shown as '**********'."""
    return json.loads(settings.model_dump_json())

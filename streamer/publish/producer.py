"""One aiokafka producer for alerts and dead letters; acks=all, idempotent where allowed."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streamer.config import KafkaSettings
from streamer.kafka_client import security_kwargs

log = structlog.get_logger(__name__)

DLQ_VALUE_LIMIT = 512 * 1024  # keep the original bytes, but never over the producer's limit


async def start_producer(k: KafkaSettings, **extra: Any) -> AIOKafkaProducer:
    """Start a producer; try idempotence first and fall back once, with one warning.

    Idempotence stops broker-side duplicates on retry; some brokers (the embedded Tansu among
    them) refuse InitProducerId, and at-least-once delivery does not depend on it.
    """
    base: dict[str, Any] = dict(
        bootstrap_servers=k.bootstrap_servers, client_id=f"{k.client_id}-producer", acks="all",
        linger_ms=k.producer_linger_ms, max_batch_size=256 * 1024,
        max_request_size=2 * 1024 * 1024, **security_kwargs(k), **extra,
    )
    if k.idempotence:
        producer = AIOKafkaProducer(enable_idempotence=True, **base)
        try:
            await producer.start()
            return producer
        except KafkaError as exc:
            await producer.stop()
            log.warning("idempotent producer refused by broker; continuing without it "
                        "(delivery stays at-least-once)", error=repr(exc))
    producer = AIOKafkaProducer(**base)
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer


def dead_letter_headers(reason: str, detail: str, topic: str, partition: int, offset: int,
                        timestamp: int | None, original: list[tuple[str, bytes]] | None,
                        truncated: bool) -> list[tuple[str, bytes]]:
    headers = [
        ("dlq.reason", reason.encode()),
        ("dlq.detail", detail[:1000].encode("utf-8", "replace")),
        ("dlq.source.topic", topic.encode()),
        ("dlq.source.partition", str(partition).encode()),
        ("dlq.source.offset", str(offset).encode()),
    ]
    if timestamp is not None:
        headers.append(("dlq.source.timestamp", str(timestamp).encode()))
    if truncated:
        headers.append(("dlq.truncated", b"true"))
    for name, value in original or []:
        headers.append((name, value if isinstance(value, bytes) else bytes(value)))
    return headers


async def send(producer: AIOKafkaProducer, topic: str, value: bytes, key: bytes | None,
               headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[Any]:
    """Enqueue one record; the returned future resolves when the broker acknowledged it."""
    return await producer.send(topic, value=value, key=key, headers=headers)

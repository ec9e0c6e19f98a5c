"""Shared fixtures. The broker: embedded Tansu, or the one named by STREAMER_TEST_BOOTSTRAP."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from simulators.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    """host:port of a Kafka-protocol broker for the whole test session.

    Set STREAMER_TEST_BOOTSTRAP=host:port to run the suite against Apache Kafka, Redpanda
    or any other broker instead of the embedded one.
    """
    external = os.environ.get("STREAMER_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture
def topic_name() -> str:
    """A unique topic name, so tests sharing one broker never see each other's records."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(autouse=True)
def _denormals_back_on() -> Iterator[None]:
    """An in-process daemon's CPU engine flushes denormal floats process-wide (as the daemon
    should); put IEEE behaviour back after each test so that later tests (hypothesis checks
    for it) see a normal process. Torch is only touched if a test already imported it."""
    yield
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_flush_denormal(False)

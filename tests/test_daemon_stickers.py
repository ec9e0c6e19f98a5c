"""End to end with the shipped model: replayed heats with known stickers raise sticker
alarms before the breakout (critical) time."""

from __future__ import annotations

import orjson
import pytest

from simulators.broker import create_topics
from simulators.caster.generate import generate
from simulators.replay import replay
from streamer.app import Application, default_model_path
from tests.test_daemon_e2e import consume_all, run_until, settings_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def test_replayed_stickers_raise_alarms_before_breakout(bootstrap: str,
                                                               topic_name: str) -> None:
    if not default_model_path().exists():
        pytest.fail("the shipped default model is missing: see streamer/model/default/README.md")
    t = topic_name
    # a seed no training or evaluation run uses; stickers only, every other event off
    heats = generate(seed=4242, casters=1, strands_per_caster=2, hours=1.5,
                     rates={"sticker": 3.0, "crack": 0.0, "slag": 0.0})
    stickers = [e for e in heats.events.to_pylist() if e["type"] == "sticker"]
    assert len(stickers) >= 4
    await create_topics(bootstrap, [t, f"{t}.alerts", f"{t}.dlq"], partitions=2)
    stats = await replay(heats, bootstrap=bootstrap, topic=t)
    app = Application(settings_for(bootstrap, t, default_model_path(),
                                   **{"buffer.min_fill": 60}))
    n = heats.readings.num_rows
    expected = n - 2 * 59
    assert await run_until(app, lambda: app.stats.evaluations >= expected, timeout_s=240) == 0
    assert stats.acked == n and app.stats.evaluations == expected
    alerts = [orjson.loads(m.value) for m in await consume_all(bootstrap, f"{t}.alerts",
                                                               expected, timeout_s=60)]
    raised = [(a["strand"], a["ts"]) for a in alerts
              if any(e["defect"] == "sticker" and e["event"] == "raised" for e in a["events"])]
    caught = [e for e in stickers
              if any(s == e["strand"] and e["onset_ts"] <= ts <= e["critical_ts"]
                     for s, ts in raised)]
    # the model's held-out sticker detection rate is in the README; here at least half
    assert len(caught) >= len(stickers) / 2, (len(caught), len(stickers))

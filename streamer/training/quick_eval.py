"""A trainer's quick held-out check: a checkpoint on freshly simulated heats, event by event.

Not the project's evaluation (``streamer evaluate``): a short script so that a training run
can be judged on heats from a seed it never saw, with the daemon's own alarm logic
(``AlarmStates``, every reading scored, i.e. hop 1) and ``score_events``::

    python -m streamer.training.quick_eval streamer/model/default/model.pt --seed 2024

Every strand is one stream from its first reading (windows shorter than the model's
window, down to ``--min-fill`` readings, at the start). Prints JSON: window ROC-AUC /
PR-AUC per type and for "any defect", and event-level detection, lead time and false
alarms per strand-day at each alarm threshold asked for.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--seed", type=int, required=True, help="simulator seed of the held-out heats")
    ap.add_argument("--sim-config", default="configs/sim/default.yaml")
    ap.add_argument("--hours", type=float, default=None)
    ap.add_argument("--strands", type=int, default=None)
    ap.add_argument("--data", default=None, help="a heat folder instead of simulating")
    ap.add_argument("--min-fill", type=int, default=60)
    ap.add_argument("--thresholds", default="0.8", help="alarm thresholds, comma-separated")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch

    from streamer.evaluation.alarms import alert_settings
    from streamer.model.checkpoint import load_checkpoint
    from streamer.training.data import load_sources, prepare_segments
    from streamer.training.train import event_metrics, score_segments, window_metrics

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    lm = load_checkpoint(args.checkpoint)
    seeds = set(lm.metadata.get("data_seeds") or [])
    overrides = {"seed": args.seed}
    if args.hours:
        overrides["hours"] = args.hours
    if args.strands:
        overrides["strands_per_caster"] = args.strands
    if args.data:
        sources = load_sources([args.data])
    else:
        sources = load_sources(simulate=True, sim_config=args.sim_config, sim_overrides=overrides)
    if sources[0].seed in seeds:
        print(f"error: seed {sources[0].seed} was used to train this checkpoint {sorted(seeds)}",
              file=sys.stderr)
        return 2
    segs, stats = prepare_segments(sources, lm.channels, lm.defect_types)
    scored = score_segments(lm.model, segs, lm.window, args.min_fill)
    types = list(lm.defect_types)
    out: dict = {"checkpoint": args.checkpoint, "model_id": lm.model_id,
                 "heldout_seed": sources[0].seed, "readings": stats,
                 "window_metrics": window_metrics(scored.y, scored.logits, types),
                 "events": {}}
    for th in (float(x) for x in args.thresholds.split(",")):
        ev = event_metrics(scored, segs, sources, types, 1, alert_settings(th))
        out["events"][str(th)] = ev
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

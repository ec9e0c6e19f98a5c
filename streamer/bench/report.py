"""The bench figures as a table a person reads."""

from __future__ import annotations

from typing import Any


def _f(x: Any, fmt: str = ",.0f") -> str:
    return "-" if x is None else format(x, fmt)


def _workers(run: dict[str, Any]) -> str:
    n = run.get("workers", 1)
    return f", {n} daemon workers" if n > 1 else ""


def format_report(r: dict[str, Any]) -> str:
    env, s = r["environment"], r["sections"]
    lines = [f"streamer bench  ({env['cpu_count']} CPUs, torch {env['torch']}, "
             f"CUDA: {env['cuda'] or 'none'}; broker: {env['broker']})", ""]
    if "client" in s:
        c = s["client"]
        lines += ["1. client limit (raw aiokafka, same readings, "
                  f"{c['bytes_per_record']:.0f} B each)",
                  f"   produce          {_f(c['produce_per_s'])} records/s",
                  f"   consume + decode {_f(c['consume_decode_per_s'])} records/s"]
    if "ingest" in s:
        i = s["ingest"]
        lines += ["2. ingest (daemon, evaluation off)",
                  f"   {_f(i['records_per_s'])} records/s = {i['ratio_to_raw']:.0%} of raw "
                  "consume + decode"]
        if "cpu_us_per_reading" in i:
            c = i["cpu_us_per_reading"]
            lines.append(f"   no broker, CPU per reading: poll handler {c['handle_us']:.2f} us "
                         f"vs the raw client's orjson.loads {c['loads_us']:.2f} us: the "
                         f"daemon adds {c['own_us']:.2f} us")
    if "latency" in s:
        la = s["latency"]
        lines += [f"3. latency ({la['strands']} strands x {la['rate_hz']:g} Hz, every reading "
                  f"evaluated, {la['readings']:,} readings{_workers(la)})",
                  f"   p50 {_f(la['p50_ms'], '.1f')} ms   p99 {_f(la['p99_ms'], '.1f')} ms   "
                  f"max {_f(la['max_ms'], '.1f')} ms   (reading time -> alert received)"]
    if "capacity" in s:
        ca = s["capacity"]
        steps = ca["steps"]
        lines.append(f"4. capacity (1 Hz, every reading evaluated, p99 <= "
                     f"{ca['p99_budget_ms']:.0f} ms{_workers(steps[0]) if steps else ''}): "
                     f"{ca['max_strands_within_budget']:,} strands")
        for st in ca["steps"]:
            lines.append(f"   {st['strands']:>6,} strands: p50 {_f(st['p50_ms'], '.0f')} ms, "
                         f"p99 {_f(st['p99_ms'], '.0f')} ms "
                         f"{'ok' if st['within_budget'] else 'OVER'}")
    if "model" in s:
        m = s["model"]
        lines.append(f"5. model {m['model_id']} (window {m['window']}): windows/s by batch")
        for row in m["results"]:
            lines.append(f"   {row['device']:<5}{row['precision']:<5} batch {row['batch']:>5}: "
                         f"{_f(row['windows_per_s'])} windows/s, median call "
                         f"{row['median_ms']:.2f} ms")
    return "\n".join(lines)

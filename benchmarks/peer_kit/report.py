"""The tables ``peers.py`` prints and writes into ``benchmarks/README.md``."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any

from peer_kit.phases import MICRO_INPUTS
from peer_kit.servers import HERE

# --- report ------------------------------------------------------------------------------------


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} vCPU {model or platform.machine()}, {platform.system()}"


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def tables(results: dict[str, Any]) -> str:
    meta, agents = results["meta"], results["meta"]["agents"]
    out = [
        f"Latest run: {meta['date']}, {meta['machine']}, CPython {meta['python']}"
        + (" (quick mode)" if meta["quick"] else "")
        + ". Agents: "
        + "; ".join(f"`{k}` = {v}" for k, v in agents.items())
        + ".",
        "",
    ]
    if results.get("overhead"):
        out += summary(results["overhead"])
        out += [
            "**Overhead** (`POST /order`; median of interleaved rounds; ratio = throughput / "
            "no agent's in the same round, median; added = latency minus no agent's):",
            "",
            "| scenario | agent | req/s | ratio | p50 ms | p99 ms | added p50 ms | added p99 ms |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        base = {(r["server"], r["db"]): r for r in results["overhead"] if r["agent"] == "none"}
        for r in results["overhead"]:
            b = base.get((r["server"], r["db"]))
            added50 = r["p50_ms"] - b["p50_ms"] if b else None
            added99 = r["p99_ms"] - b["p99_ms"] if b else None
            out.append(
                f"| {r['server']}, {r['db']} | {r['agent']} | {r['rps']:,.0f} | "
                f"{fmt(r['ratio'], '.3f')} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                f"{fmt(added50, '+.2f')} | {fmt(added99, '+.2f')} |"
            )
        out.append("")
    if results.get("micro"):
        ops = list(dict.fromkeys(r["op"] for r in results["micro"]))
        cols = [a for a in agents if a != "none"]
        out += [
            "**Per call** (µs added to one call inside a request, median; the no-agent call's "
            "own cost in the second column):",
            "",
            "| call | inputs | no agent µs | " + " | ".join(f"{a} +µs" for a in cols) + " |",
            "| --- | ---: | ---: | " + " | ".join("---:" for _ in cols) + " |",
        ]
        cell = {(r["op"], r["inputs"], r["agent"]): r for r in results["micro"]}
        for op in ops:
            for n in MICRO_INPUTS:
                if (op, n, "none") not in cell:
                    continue
                added = [fmt(cell[(op, n, a)]["added_us"], "+.1f") for a in cols]
                base_us = cell[(op, n, "none")]["us"]
                out.append(f"| {op} | {n:,} | {base_us:.1f} | " + " | ".join(added) + " |")
        out.append("")
    if results.get("accuracy"):
        out += [
            "**Accuracy** (detected = exploiting attacks stopped before the sink; false "
            "positives = honest values that did not reach their sink):",
            "",
            "| family | agent | detected | false positives |",
            "| --- | --- | ---: | ---: |",
        ]
        for r in sorted(results["accuracy"], key=lambda r: (r["family"], r["agent"])):
            rate = r["detected"] / r["attacks"] if r["attacks"] else 0
            out.append(
                f"| {r['family']} | {r['agent']} | {r['detected']}/{r['attacks']} ({rate:.0%}) "
                f"| {r['false_positives']}/{r['honest']} |"
            )
        out.append("")
    return "\n".join(out)


def summary(overhead: list[dict[str, Any]]) -> list[str]:
    """Per scenario: this agent's throughput loss, and each peer's added p50 latency as a
    multiple of this agent's (how many times more latency the peer adds)."""
    peers = [a for a in dict.fromkeys(r["agent"] for r in overhead) if a not in ("none", "rasp")]
    lines = [
        "**Summary** (throughput loss of `rasp`; a peer's added p50 latency as a multiple of "
        "`rasp`'s):",
        "",
        "| scenario | rasp throughput loss | "
        + " | ".join(f"{p} added p50 / rasp's" for p in peers)
        + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in peers) + " |",
    ]
    cell = {(r["server"], r["db"], r["agent"]): r for r in overhead}
    for server, db in dict.fromkeys((r["server"], r["db"]) for r in overhead):
        base, ours = cell.get((server, db, "none")), cell.get((server, db, "rasp"))
        if base is None or ours is None or ours["ratio"] is None:
            continue
        added = ours["p50_ms"] - base["p50_ms"]
        multiples = []
        for peer in peers:
            theirs = cell.get((server, db, peer))
            if theirs is None:
                multiples.append("n/a")
            elif added <= 0:
                multiples.append("rasp adds none")
            else:
                multiples.append(f"{(theirs['p50_ms'] - base['p50_ms']) / added:.1f}x")
        lines.append(
            f"| {server}, {db} | {1 - ours['ratio']:.1%} | " + " | ".join(multiples) + " |"
        )
    return [*lines, ""]


BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"


def update_readme(text: str) -> None:
    readme = HERE / "README.md"
    current = readme.read_text()
    if BEGIN not in current:
        return
    head, rest = current.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")

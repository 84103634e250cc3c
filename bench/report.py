"""One performance report: run the benchmarks, then write a table and plots.

    python -m bench.report [--only upload,reviewers] [--skip browser] [--from-results]
                           [--args NAME='--opt value' ...] [--results bench/results]

Each benchmark runs as its own process (``python -m bench.NAME --out RESULTS/NAME.json``), one
after another, its output kept in ``RESULTS/logs/NAME.log``. One that fails, runs past its time
limit or whose module is missing is reported as such, and the others are still run and written.
Benchmarks left out (``--only``, ``--skip``) are reported from the JSON an earlier run left in
the results folder, marked as such; with ``--from-results`` nothing is run at all.

Writes ``RESULTS/report.md`` (one table: benchmark, measure, our figure, the peer's figure, the
goal, met or not; then each benchmark's set-up as it describes it) and PNG plots beside it:
upload MB/s against the Node tus server per size, concurrent uploads (aggregate MB/s and p99
PATCH latency against N), reviewers' requests/s against nginx, ledger appends/s, and time to
playable against bare ffmpeg. Figures are whatever the runs measured on this machine; the report
says when and at what load average.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import plots

# In the order they run: what needs the quietest machine first is not possible to promise on a
# shared machine, so the order is simply cheapest-to-set-up first. Limits in minutes.
BENCHES: dict[str, int] = {
    "upload": 15, "concurrency": 15, "s3put": 15, "browser": 15, "ledger": 20, "transcode": 30, "reviewers": 15,
}


@dataclass
class Outcome:
    name: str
    status: str  # "ok", "failed (exit N)", "timed out after N min", "module missing", "no results"
    seconds: float | None = None
    result: dict[str, Any] | None = None
    earlier: bool = False  # not run this time: read from the results folder


# -- running ---------------------------------------------------------------------------------


def run_one(name: str, results: Path, extra: list[str], limit_minutes: int) -> Outcome:
    if importlib.util.find_spec(f"bench.{name}") is None:
        return Outcome(name, "module missing")
    out = results / f"{name}.json"
    out.unlink(missing_ok=True)  # figures from an earlier run must never pass for this one's
    log = results / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", f"bench.{name}", "--out", str(out), *extra]
    print(f"== {name}: {shlex.join(command)} (log {log})", flush=True)
    started = time.monotonic()
    with open(log, "wb") as stream:
        # Its own session, so a time-out can end it and every server it started, and nothing else.
        process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = process.wait(limit_minutes * 60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 15)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
            return Outcome(name, f"timed out after {limit_minutes} min", time.monotonic() - started)
    seconds = time.monotonic() - started
    if code != 0:
        return Outcome(name, f"failed (exit {code}; see logs/{name}.log)", seconds)
    return read_one(name, results, seconds)


def read_one(name: str, results: Path, seconds: float | None = None) -> Outcome:
    path = results / f"{name}.json"
    if not path.exists():
        if importlib.util.find_spec(f"bench.{name}") is None:
            return Outcome(name, "module missing")
        return Outcome(name, "no results", seconds)
    try:
        return Outcome(name, "ok", seconds, json.loads(path.read_text()))
    except json.JSONDecodeError as error:
        return Outcome(name, f"unreadable results ({error})", seconds)


# -- the table -------------------------------------------------------------------------------


def figure(value: Any, unit: str | None = None) -> str:
    if value is None:
        return "—"
    if unit == "bytes" and isinstance(value, int | float):
        return f"{value / 2**20:.1f} MiB"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def met_mark(met: Any) -> str:
    return "—" if met is None else ("✓" if met else "✗")


Row = tuple[str, str, str, str, str, str]  # benchmark, measure, ours, peer, goal, met


def paired_rows(name: str, result: dict[str, Any], key: str, ours: str, peer: str) -> list[Row]:
    """Rows of benchmarks that measure us and a peer at several sizes (upload, s3put): each
    size's ratio target, with both medians beside it."""
    by_size: dict[int, dict[str, dict[str, Any]]] = {}
    for row in result.get("rows", []):
        by_size.setdefault(row["size"], {})[row[key]] = row
    out: list[Row] = []
    ratio_targets = [t for t in result.get("targets", []) if "ratios_by_round" in t]
    # The benchmarks append one ratio target per size, in the order of their rows' sizes.
    for found, wanted in zip(by_size.values(), ratio_targets, strict=False):
        mine, theirs = found.get(ours), found.get(peer)
        if mine is None or theirs is None:
            continue
        out.append((name, wanted["what"], f"{mine['median_mb_per_s']:.0f} MB/s ({figure(wanted['measured'])}×)",
                    f"{theirs['what']}: {theirs['median_mb_per_s']:.0f} MB/s", wanted["goal"], met_mark(wanted["met"])))
    used = {id(t) for t in ratio_targets[:len(out)]}
    out += [generic_row(name, t) for t in result.get("targets", []) if id(t) not in used]
    return out


def generic_row(name: str, found: dict[str, Any]) -> Row:
    return (name, found["what"], figure(found.get("measured"), found.get("unit")), str(found.get("peer", "—")),
            str(found.get("goal", "—")), met_mark(found.get("met")))


def ledger_rows(result: dict[str, Any]) -> list[Row]:
    """The ledger bench before it wrote a ``targets`` list: its figures against its goals."""
    goals = result.get("targets", {})
    out: list[Row] = []
    for run in result.get("appends", []):
        if run["writers"] == 4 and run["entries_per_transaction"] == 1:
            goal = goals.get("appends_per_s_4_writers", 1000)
            out.append(("ledger", "appends/s, 4 writers, one entry per transaction", f"{run['appends_per_s']:,.0f}/s",
                        "—", f"≥ {goal:,.0f}/s", met_mark(run["appends_per_s"] >= goal)))
    goal_ms = goals.get("proof_ms_at_1m", 10)
    for kind in ("inclusion", "consistency"):
        proof = result.get("proofs", {}).get(kind)
        if proof:
            out.append(("ledger", f"{kind} proof at {result['proofs']['tree_size']:,} entries, p99",
                        f"{proof['p99_ms']:.2f} ms", "—", f"< {goal_ms} ms", met_mark(proof["p99_ms"] < goal_ms)))
    verify = result.get("verify")
    if verify:
        goal_s = goals.get("verify_s_at_1m", 30)
        out.append(("ledger", f"audit verify over {verify['entries']:,} entries", f"{verify['seconds']:.1f} s", "—",
                    f"< {goal_s} s", met_mark(verify["seconds"] < goal_s)))
    return out


def browser_rows(result: dict[str, Any]) -> list[Row]:
    summary = result.get("summary", {})
    uploaded = summary.get("ratio_to_cli", {}).get("browser_uploaded", {}).get("median")
    if uploaded is None:
        return []
    rates = summary.get("rates_mb_per_s", {})
    ours = (rates.get("browser_uploaded") or {}).get("median")
    cli = (rates.get("cli_whole") or {}).get("median")
    return [("browser", "browser upload, 'Uploaded' (medians)",
             f"{figure(ours)} MB/s ({uploaded:.0%})", f"evidence upload: {figure(cli)} MB/s",
             f"≥ {summary.get('target_ratio', 0.8):.0%} of the CLI", met_mark(summary.get("target_met")))]


def rows_of(outcome: Outcome) -> list[Row]:
    result, name = outcome.result or {}, outcome.name
    if name == "upload":
        return paired_rows(name, result, "server", "evidence", "tus-node")
    if name == "s3put":
        return paired_rows(name, result, "client", "evidence", "boto3")
    if name == "ledger" and not isinstance(result.get("targets"), list):
        return ledger_rows(result)
    if name == "browser" and not isinstance(result.get("targets"), list):
        return browser_rows(result)
    return [generic_row(name, t) for t in result.get("targets", []) if isinstance(t, dict)]


def markdown(outcomes: list[Outcome], pictures: dict[str, str], plot_errors: dict[str, str], when: str) -> str:
    load = os.getloadavg()
    lines = [
        "# Performance report",
        "",
        f"Written {when} by `python -m bench.report` on {platform.node() or 'this machine'}: {os.cpu_count()} CPUs,"
        f" Python {platform.python_version()}; 1/5/15-min load average at the end {load[0]:.1f}/{load[1]:.1f}/"
        f"{load[2]:.1f}. Every server, peer and client runs on this machine at once, so figures depend on what else"
        " runs: each benchmark's set-up below says what its load was.",
        "",
    ]
    cpus = os.cpu_count() or 1
    if load[1] > cpus:
        # Figures taken while other work held the CPUs are lower bounds, and comparisons with a
        # peer measured minutes apart carry that noise: say so where the figures are read.
        lines += [f"**The machine was busy** (5-min load average {load[1]:.1f} on {cpus} CPUs when the report was"
                  " written): other work shared the CPUs during these runs, so treat the figures as lower bounds"
                  " and re-run `make bench` on a quiet machine before quoting them.", ""]
    lines += [
        "| benchmark | measure | our figure | peer's figure | goal | met |",
        "|---|---|---:|---|---|---|",
    ]
    for outcome in outcomes:
        found = rows_of(outcome) if outcome.status == "ok" else []
        if not found:
            why = outcome.status if outcome.status != "ok" else "ran, but reported no targets"
            lines.append(f"| {outcome.name} | {why} | — | — | — | — |")
        for row in found:
            lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    lines += ["", "## Runs", ""]
    for outcome in outcomes:
        took = f", {outcome.seconds / 60:.1f} min" if outcome.seconds is not None else ""
        when = (outcome.result or {}).get("when") or (outcome.result or {}).get("finished_at") or "time not recorded"
        earlier = f" (not run this time: results of an earlier run, {when})" if outcome.earlier else f" ({when})"
        lines.append(f"- **{outcome.name}**: {outcome.status}{took}{earlier}")
    for outcome in outcomes:
        # Each benchmark's own account: its set-up, or its detailed table where it writes one.
        detail = (outcome.result or {}).get("markdown") or (outcome.result or {}).get("setup")
        if detail:
            lines += ["", f"### {outcome.name}", "", str(detail)]
    if pictures or plot_errors:
        lines += ["", "## Plots", ""]
        lines += [f"![{title}]({file})" for file, title in pictures.items()]
        lines += [f"- {name}: not drawn ({why})" for name, why in plot_errors.items()]
    return "\n".join(lines) + "\n"


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("bench/results"), help="results folder (bench/results)")
    parser.add_argument("--only", default="", help="comma-separated benchmarks to run (all)")
    parser.add_argument("--skip", default="", help="comma-separated benchmarks not to run")
    parser.add_argument("--from-results", action="store_true", help="run nothing; report the JSON already there")
    parser.add_argument("--args", action="append", default=[], metavar="NAME=ARGS",
                        help="extra arguments for one benchmark, e.g. reviewers='--seconds 10' (repeatable)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHES)
    skipped = {n.strip() for n in args.skip.split(",") if n.strip()}
    unknown = (set(names) | skipped) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(BENCHES)}")
    args.names = [n for n in names if n not in skipped]
    args.extra = {}
    for given in args.args:
        name, _, rest = given.partition("=")
        if name not in BENCHES:
            parser.error(f"--args {given!r}: unknown benchmark {name!r}")
        args.extra[name] = shlex.split(rest)
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: Path = args.results
    results.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for name in BENCHES:
        if args.from_results or name not in args.names:
            outcome = read_one(name, results)
            outcome.earlier = not args.from_results
            if outcome.earlier and outcome.status != "ok":
                continue  # neither asked for nor there: nothing to say about it
        else:
            outcome = run_one(name, results, args.extra.get(name, []), BENCHES[name])
            print(f"   {name}: {outcome.status}", flush=True)
        outcomes.append(outcome)
    found = {o.name: o.result for o in outcomes if o.result is not None}
    pictures, plot_errors = plots.draw_all(found, results)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = markdown(outcomes, pictures, plot_errors, when)
    (results / "report.md").write_text(text)
    return {"name": "report", "when": when, "outcomes": {o.name: o.status for o in outcomes},
            "plots": sorted(pictures), "plot_errors": plot_errors}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary = run(args)
    print((args.results / "report.md").read_text())
    # The report is written whatever happened; the exit status says whether every benchmark ran.
    return 0 if all(status == "ok" for status in summary["outcomes"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

"""`rmorch`: a thin CLI. Options become a spec; one function runs it.

Each command imports the stages it runs when it runs (late, by design), so that `rmorch --help` imports neither
Ray nor matplotlib nor the scheduler.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from rmorch.core.errors import UserError
from rmorch.orchestrator.generate import GenerateConfig
from rmorch.orchestrator.spec.sweep_spec import DEFAULT_RESAMPLES

console = Console()
err_console = Console(stderr=True)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """User errors: one line on stderr and exit code 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            err_console.print(f"[bold red]error:[/bold red] {escape(str(e))}", highlight=False, soft_wrap=True)
            sys.exit(2)

    return wrapper


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more (rmorch's own logging at INFO).")
def main(verbose: bool) -> None:
    """rmorch: evaluate reward models and LLM judges at cluster scale."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("spec_file", required=False, type=click.Path(dir_okay=False))
@click.option("--suite", "suites", multiple=True, help="Suite name (repeatable); instead of a spec file.")
@click.option("--model", "models", multiple=True,
              help="Model (repeatable): a baseline name (length, random) or NAME=PATH for a classifier RM.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Suite NAME reads DIR/NAME/.")
@click.option("--limit-per-subset", type=int, help="Seeded sample of at most N items per subset.")
@click.option("--out", type=click.Path(file_okay=False), help="Output directory (overrides the spec's `out`).")
@click.option("--seed", type=int, help="Seed (overrides the spec's `seed`).")
@click.option("--address", help="Join this Ray cluster: HOST:PORT (the head's GCS port) or auto (else RAY_ADDRESS, "
                                "else start a local instance); a token the head asks for comes from RAY_AUTH_TOKEN, "
                                "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token.")
@click.option("--num-cpus", type=int, help="CPUs of the local Ray instance.")
@click.option("--num-gpus", type=int, help="GPUs of the local Ray instance (default: detected).")
@click.option("--max-error-rate", metavar="RATE|none",
              help="Stop once more than this share of the result rows are errors (overrides the spec's "
                   "`max_error_rate`, default 0.5); none: never stop.")
@click.option("--keep-errors", is_flag=True,
              help="Keep the error rows of finished units as final (the spec's `keep_errors`); by default a rerun "
                   "computes them again, and only them.")
@click.option("--dashboard", is_flag=True, help="Start Ray's dashboard with the local Ray instance (off by default).")
@click.option("--dashboard-host", default="127.0.0.1", show_default=True,
              help="Where the dashboard listens; 0.0.0.0 opens it to the network.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@user_errors
def sweep(spec_file: str | None, suites: tuple[str, ...], models: tuple[str, ...], data_dir: str | None,
          limit_per_subset: int | None, out: str | None, seed: int | None, address: str | None,
          num_cpus: int | None, num_gpus: int | None, max_error_rate: str | None, keep_errors: bool,
          dashboard: bool, dashboard_host: str, quiet: bool) -> None:
    """Run a sweep: every model of SPEC_FILE (or --model) on every suite (or --suite)."""
    from rmorch.orchestrator.plan.estimate import process_seconds
    from rmorch.orchestrator.progress import QuietDisplay, RichDisplay
    from rmorch.orchestrator.report.render import print_leaderboard
    from rmorch.orchestrator.spec.parse import load_spec, spec_from_dict
    from rmorch.orchestrator.sweep import RayOptions, run_sweep

    if spec_file:
        if suites or models:
            raise UserError("give either a spec file or --suite/--model options, not both")
        spec = load_spec(spec_file)
        doc = spec.to_dict()
    else:
        if not suites or not models:
            raise UserError("give a spec file, or at least one --suite and one --model")
        doc = {"suites": [{"name": s} for s in suites], "models": [_model_option(m) for m in models]}
    if data_dir:
        for s in doc["suites"]:
            s.setdefault("data", os.path.join(data_dir, s["name"]))
    if limit_per_subset is not None:
        for s in doc["suites"]:
            s["limit_per_subset"] = limit_per_subset
    if out is not None:
        doc["out"] = out
    if seed is not None:
        doc["seed"] = seed
    if max_error_rate is not None:
        doc["max_error_rate"] = _rate_option(max_error_rate)
    if keep_errors:
        doc["keep_errors"] = True
    spec = spec_from_dict(doc, source=spec_file)
    display = QuietDisplay() if quiet else RichDisplay(err_console)
    ray_options = RayOptions(address=address, num_cpus=num_cpus, num_gpus=num_gpus, dashboard=dashboard,
                             dashboard_host=dashboard_host)
    result = run_sweep(spec, ray_options, display, process_seconds=process_seconds())
    print_leaderboard(result.leaderboard, console)
    last = result.stats
    redone = f" ({result.errors_redone} earlier error rows redone)" if result.errors_redone else ""
    console.print(
        f"{result.n_units} units planned, {result.n_skipped} already in the store, {len(last.computed)} computed; "
        f"model loads: {dict(last.loads) or 'none'}; {last.error_rows} error rows{redone}; {result.seconds:.1f} s. "
        f"Report: {result.out}/report.html (and leaderboard.json, stats.json, bon.json)"
    )
    for model, reason in last.failed_models.items():
        err_console.print(f"[bold red]model {escape(model)} did not run:[/bold red] {escape(reason)}", highlight=False)
    for stop in last.stopped_models.values():
        err_console.print(f"[bold red]error:[/bold red] {escape(stop.message())}", highlight=False, soft_wrap=True)
    if result.stopped is not None:
        err_console.print(f"[bold red]error:[/bold red] {escape(result.stopped)}", highlight=False, soft_wrap=True)
        err_console.print(f"Store: {escape(result.out)} (`rmorch status {escape(result.out)}`)", highlight=False,
                          soft_wrap=True)
    if not result.ok:
        sys.exit(1)


def _rate_option(value: str) -> float | None:
    """--max-error-rate: a number, or none/null/off; the spec checks the range."""
    if value.strip().lower() in ("none", "null", "off"):
        return None
    try:
        return float(value)
    except ValueError:
        raise UserError(f"--max-error-rate: expected a number in (0, 1] or none, got {value!r}") from None


def _model_option(value: str) -> dict[str, Any]:
    if "=" in value:
        name, path = value.split("=", 1)
        return {"name": name, "kind": "classifier", "path": path}
    return {"name": value}


@main.command()
@click.argument("dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "target", type=click.Path(file_okay=False),
              help="Where to write the report (required with several sweeps: their merge).")
@click.option("--resamples", type=int, default=DEFAULT_RESAMPLES, show_default=True,
              help="Bootstrap resamples for intervals and paired tests (0: official numbers only).")
@click.option("--export-reward-bench", "export", is_flag=True,
              help="Also write each sweep's RewardBench results in the leaderboards' layout (OUT/export/reward-bench).")
@click.option("--org", default="rmorch", show_default=True, help="The <org> of exported model names.")
@user_errors
def report(dirs: tuple[str, ...], target: str | None, resamples: int, export: bool, org: str) -> None:
    """Print the leaderboard of one sweep's OUT, or of several merged, and write the report files: leaderboard.
    {json,csv,md}, stats.json, bon.json, plots/, report.html."""
    from rmorch.orchestrator.report.compute import build_report
    from rmorch.orchestrator.report.render import print_leaderboard, write_report
    from rmorch.orchestrator.store.storage import is_uri

    for d in dirs:
        if not is_uri(d) and not os.path.isdir(d):
            raise UserError(f"{d}: no such directory")
    if len(dirs) > 1 and target is None:
        raise UserError("several sweeps are merged into a new directory: give it with --out DIR")
    out = target or dirs[0]

    def same(a: str, b: str) -> bool:
        return a.rstrip("/") == b.rstrip("/") if is_uri(a) or is_uri(b) else os.path.abspath(a) == os.path.abspath(b)

    if len(dirs) > 1 and any(same(out, d) for d in dirs):
        raise UserError(f"--out {out} is one of the sweeps being merged: choose a new directory")
    if resamples < 0:
        raise UserError("--resamples must be >= 0")
    rep = build_report(list(dirs), resamples=resamples)
    written = write_report(out, rep)
    print_leaderboard(rep.entries, console)
    console.print(f"[dim]wrote {len(written)} files under {out}: report.html, leaderboard.json, stats.json, "
                  f"bon.json, ...[/dim]")
    if export:
        from rmorch.orchestrator.report.export import export_reward_bench

        for d in dirs:
            files = export_reward_bench(d, org=org)
            console.print(f"[dim]exported {len(files)} RewardBench results files under "
                          f"{os.path.join(d, 'export', 'reward-bench')}[/dim]")


GENERATE_DEFAULTS = {f.name: f.default for f in dataclasses.fields(GenerateConfig)}  # the options' one home


@main.command()
@click.option("--model", required=True, help="Policy model: a local directory, a hub id or builtin:NAME.")
@click.option("--data", required=True, type=click.Path(exists=True),
              help="GSM8K test.jsonl (question, answer ending in '#### N'), or the directory holding it.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The pool file to write (.jsonl).")
@click.option("--n", "n", type=int, default=GENERATE_DEFAULTS["n"], show_default=True, help="Samples per problem.")
@click.option("--limit", type=int, help="Only the first N problems.")
@click.option("--seed", type=int, default=GENERATE_DEFAULTS["seed"], show_default=True,
              help="Global seed; each sample's seed derives from it.")
@click.option("--temperature", type=float, default=GENERATE_DEFAULTS["temperature"], show_default=True)
@click.option("--top-p", type=float, default=GENERATE_DEFAULTS["top_p"], show_default=True)
@click.option("--max-tokens", type=int, default=GENERATE_DEFAULTS["max_tokens"], show_default=True, help="Generated tokens per sample.")
@click.option("--dtype", default=GENERATE_DEFAULTS["dtype"], show_default=True,
              help="float32 | auto | bfloat16 | float16 (float32: samples independent of the batch; auto: faster).")
@user_errors
def generate(model: str, data: str, out: str, n: int, limit: int | None, seed: int, temperature: float,
             top_p: float, max_tokens: int, dtype: str) -> None:
    """Sample a best-of-N pool: N solutions per GSM8K problem from MODEL (vLLM), each checked against the
    reference answer, written to OUT for the gsm8k-bon suite."""
    from rmorch.orchestrator.generate import generate_pool, spec_snippet

    config = GenerateConfig(model=model, data=data, out=out, n=n, limit=limit, seed=seed, temperature=temperature,
                            top_p=top_p, max_tokens=max_tokens, dtype=dtype)
    s = generate_pool(config)
    console.print(
        f"{s.n_problems} problems x {n} samples: {s.n_correct}/{s.n_samples} correct ({s.accuracy:.1%}), "
        f"any correct on {s.oracle:.1%} of problems; {s.n_length_stopped} cut at --max-tokens, {s.n_errors} "
        f"errors; {s.output_tokens} tokens in {s.seconds:.1f} s ({s.tokens_per_second:.0f} tokens/s), engine start "
        f"{s.engine_seconds:.1f} s. Wrote {out}. Score it with:"
    )
    console.print(spec_snippet(out), highlight=False, markup=False)


@main.command()
@click.argument("out")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON instead of a table.")
@user_errors
def status(out: str, as_json: bool) -> None:
    """Progress of a running or finished sweep, read from its store OUT (a directory or a URI such as s3://...):
    units done / planned, error rows (and the units with error rows, which a rerun redoes) per model and suite, when
    the last unit landed, whether it finished."""
    import json as json_module

    from rich.table import Table

    from rmorch.orchestrator.store.status import (
        describe_state,
        read_status,
        replaced_replicas,
        several_identities,
        stopped_model,
    )

    st = read_status(out)
    if as_json:
        click.echo(json_module.dumps(st.to_dict(), indent=2))
        return
    t = Table(title=f"{out} (run {st.run_id})", title_justify="left")
    for name, justify in (("model", "left"), ("suite", "left"), ("units", "right"), ("done", "right"),
                          ("error rows", "right"), ("units to redo", "right")):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for p in st.pairs:
        pct = f"{100.0 * p.units_done / p.units_planned:.0f} %" if p.units_planned else "-"
        t.add_row(escape(p.model), escape(p.suite), f"{p.units_done}/{p.units_planned}", pct, str(p.error_rows),
                  str(p.units_with_errors))
    console.print(t)
    console.print(escape(describe_state(st)), highlight=False, soft_wrap=True)
    _print_progress(st)
    for model, reason in st.failed_models.items():
        err_console.print(f"[bold red]model {escape(model)} did not run:[/bold red] {escape(reason)}", highlight=False)
    for model, stop in st.stopped_models.items():
        err_console.print(f"[bold red]{escape(stopped_model(model, stop))}[/bold red]", highlight=False,
                          soft_wrap=True)
    for model, reasons in st.replaced.items():
        console.print(f"[yellow]{escape(replaced_replicas(model, reasons))}[/yellow]", highlight=False,
                      soft_wrap=True)
    if st.other_units:
        console.print(f"[dim]{st.other_units} finished units in the store belong to earlier settings or specs[/dim]")
    for model, n in st.identities.items():
        console.print(escape(several_identities(model, n)), highlight=False, soft_wrap=True)
    for problem in st.problems:
        err_console.print(f"[yellow]warning:[/yellow] {escape(problem)}", highlight=False)


def _print_progress(st: Any) -> None:
    """`rmorch status`: per model the measured rate, the work left and the ETA; stalled models flagged."""
    from rich.table import Table

    from rmorch.orchestrator.plan.estimate import STALL_FACTOR, eta_text

    busy = [p for p in st.progress if p.units_left or p.rate_source == "this run"]
    if not busy:
        return
    t = Table(title="rates and time left", title_justify="left")
    for name, justify in (("model", "left"), ("tokens/s per replica", "right"), ("from", "left"),
                          ("units left", "right"), ("work left", "right"), ("replicas busy", "right"),
                          ("ETA", "right")):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for p in busy:
        rate = f"{p.tokens_per_second:,.0f}" if p.tokens_per_second else "-"
        t.add_row(escape(p.model), rate, p.rate_source or "-", str(p.units_left), eta_text(p.work_left_seconds),
                  f"{p.busy_replicas:.1f}" if p.busy_replicas else "-", eta_text(p.eta_seconds))
    console.print(t)
    if not st.finished:
        console.print(f"ETA of the scoring at the pace so far: {eta_text(st.eta_seconds)}", highlight=False)
    for p in st.progress:
        if p.stalled:
            err_console.print(f"[yellow]warning:[/yellow] model {escape(p.model)}: no unit landed for "
                              f"{eta_text(p.idle_seconds)}, more than {STALL_FACTOR:g} x its longest unit "
                              f"({eta_text(p.longest_unit_seconds)}); its replicas may be stuck", highlight=False)


@main.command()
@click.argument("spec_file", type=click.Path(dir_okay=False, exists=True))
@click.option("--gpus", type=int, help="Plan for one node of N GPUs (0: this machine's CPUs, the default).")
@click.option("--nodes", metavar="NxG", help="Plan for N nodes of G GPUs each, e.g. 2x4.")
@click.option("--address", help="Plan for the live nodes of this Ray cluster (e.g. auto).")
@click.option("--gpu-memory-gb", type=float, default=80.0, show_default=True, help="Memory of one GPU.")
@click.option("--calibrate-from", "calibrate", multiple=True, type=click.Path(file_okay=False),
              help="Use the rates measured by the sweep in this store (repeatable; default: the spec's own store).")
@click.option("--out", type=click.Path(file_okay=False), help="The store to plan against (overrides the spec's `out`).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@user_errors
def plan(spec_file: str, gpus: int | None, nodes: str | None, address: str | None, gpu_memory_gb: float,
         calibrate: tuple[str, ...], out: str | None, as_json: bool) -> None:
    """What `rmorch sweep SPEC_FILE` would run, and how long it would take, without loading a model: units per
    model (and what the store already holds), estimated tokens, GPU-seconds and load times, whether each model fits
    the cluster, the simulated makespan and its critical path."""
    import json as json_module

    from rmorch.orchestrator.plan.forecast import gpu_nodes, parse_nodes, plan_sweep, ray_cluster, this_machine
    from rmorch.orchestrator.spec.parse import load_spec, spec_from_dict

    if sum(x is not None for x in (gpus, nodes, address)) > 1:
        raise UserError("give at most one of --gpus, --nodes and --address")
    if gpu_memory_gb <= 0:
        raise UserError("--gpu-memory-gb must be > 0")
    if nodes is not None:
        cluster = parse_nodes(nodes, gpu_memory_gb)
    elif address is not None:
        cluster = ray_cluster(address, gpu_memory_gb)
    elif gpus:
        cluster = gpu_nodes(1, gpus, gpu_memory_gb)
    else:
        cluster = this_machine()
    spec = load_spec(spec_file)
    if out is not None:
        spec = spec_from_dict({**spec.to_dict(), "out": out}, source=spec_file)
    result = plan_sweep(spec, cluster, list(calibrate) if calibrate else None, source=spec_file)
    if as_json:
        click.echo(json_module.dumps(result.to_dict(), indent=2))
        return
    _print_plan(result)


def _print_plan(p: Any) -> None:
    from rich.table import Table

    from rmorch.orchestrator.plan.estimate import eta_text

    console.print(f"{escape(p.spec)} on {escape(p.cluster)}; store {escape(p.out)}", highlight=False)
    for s in p.suites:
        console.print(f"  suite {escape(s.name)}: {s.items} items, ~{s.tokens:,.0f} tokens", highlight=False)
    on_gpus = any(m.gpus for m in p.models)
    t = Table(title_justify="left")
    columns = [("model", "left"), ("units", "right"), ("stored", "right"), ("tokens", "right"), ("tok/s", "right"),
               ("start", "right")]
    columns += [("GPU-s", "right"), ("GPUs", "right"), ("GB/GPU", "right")] if on_gpus else [("CPU-s", "right")]
    columns += [("repl.", "right"), ("ends", "right"), ("runs", "left")]
    for name, justify in columns:
        t.add_column(name, justify=justify)  # type: ignore[arg-type]

    def mark(source: str) -> str:
        return "" if source == "measured" else "*"

    for m in p.models:
        size = ([f"{m.gpu_seconds:,.0f}", f"{m.gpus:g}", f"{m.memory_gb_per_gpu:.1f}" if m.memory_gb_per_gpu else "-"]
                if on_gpus else [f"{m.replica_seconds:,.0f}"])
        t.add_row(escape(m.name), str(m.units), str(m.units_stored), f"{m.tokens:,.0f}",
                  f"{m.tokens_per_second:,.0f}{mark(m.rate_source)}", f"{m.start_seconds:.0f}s{mark(m.start_source)}",
                  *size, str(m.replicas or "-"), eta_text(m.end_s), "yes" if m.can_run else "[red]no[/red]")
    console.print(t)
    if any(m.rate_source != "measured" or m.start_source != "measured" for m in p.models):
        console.print("[dim]* assumed (no measurement of it in the store: see `rmorch plan --calibrate-from`)[/dim]")
    for m in p.models:
        if not m.can_run:
            reason = m.reason or ""
            named = reason if f"'{m.name}'" in reason else f"model {m.name}: {reason}"  # the sweep's refusals name it
            err_console.print(f"[bold red]cannot run:[/bold red] {escape(named)}", highlight=False, soft_wrap=True)
    overheads = "" if p.overheads_source == "measured" else " (assumed)"
    console.print(f"makespan ~{eta_text(p.makespan_s)}: start-up {eta_text(p.startup_s)}, scheduling "
                  f"{eta_text(p.schedule_s)}, report {eta_text(p.report_s)}{overheads}; lower bound "
                  f"{eta_text(p.lower_bound_s)}; {p.gpu_hours:.2f} GPU-hours", highlight=False)
    if p.critical_path:
        cp = p.critical_path
        console.print(f"critical path: {escape(cp['model'])} ends last ({eta_text(cp['end_s'])}): "
                      f"{escape(cp['why'])}", highlight=False, soft_wrap=True)
    if p.calibrated_from:
        console.print(f"[dim]measured rates from: {escape(', '.join(p.calibrated_from))}[/dim]")


@main.command(name="ls")
def list_known() -> None:
    """List the known suites and model kinds."""
    from rich.table import Table

    from rmorch.actors import get_kind, kind_names
    from rmorch.suites import get_suite_class, suite_names

    t = Table(title="suites", title_justify="left")
    t.add_column("name")
    t.add_column("hub id")
    t.add_column("description")
    for name in suite_names():
        cls = get_suite_class(name)
        t.add_row(name, cls.hub_id or "-", cls.description)
    console.print(t)
    k = Table(title="model kinds", title_justify="left")
    k.add_column("kind")
    k.add_column("description")
    for name in kind_names():
        k.add_row(name, get_kind(name).description)
    console.print(k)


if __name__ == "__main__":
    main()

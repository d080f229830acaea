"""PNG plots for people: best-of-N curves per pool, benchmark-vs-best-of-N correlations and the reliability
diagrams of judges with probability verdicts (matplotlib, no screen).

File names are derived from suite names with `plot_name`, so report pages can find them: plots/bon-<pool>.png,
plots/corr-<benchmark>--<pool>.png and plots/calib-<model>--<suite>.png (`calibration_plot_file`).
"""

from __future__ import annotations

import re
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window
import matplotlib.pyplot as plt


def plot_name(*parts: str) -> str:
    return "--".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", p) for p in parts)


def bon_plot(pool: str, curves: list[dict[str, Any]], path: str) -> None:
    """Every model's expected gold at k = 1..N on one pool, with the oracle and random lines."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    k = curves[0]["k"]
    ax.plot(k, curves[0]["oracle"], color="black", linestyle="--", linewidth=1.5, label="oracle (best of k)")
    ax.axhline(curves[0]["random"], color="grey", linestyle=":", linewidth=1.5, label="random pick")
    for c in sorted(curves, key=lambda c: -c["expected"][-1]):
        ax.plot(c["k"], c["expected"], marker="o", markersize=3, linewidth=1.2, label=c["model"])
    ax.set_xlabel("k (candidates drawn)")
    ax.set_ylabel("expected gold quality of the top-reward pick")
    ax.set_title(f"best-of-k on {pool} ({curves[0]['n_items']} prompts, exact expectation)")
    ax.set_xticks(k if len(k) <= 16 else k[:: max(1, len(k) // 16)])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def correlation_plot(corr: dict[str, Any], path: str) -> None:
    """Models as points: benchmark score (x) against best-of-N gain on a pool (y), with r in the title."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    ax.scatter(corr["accuracy"], corr["gain"], color="tab:blue")
    for m, x, y in zip(corr["models"], corr["accuracy"], corr["gain"]):
        ax.annotate(m, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    r = corr["pearson"]["r"]
    rho = corr["spearman"]["r"]
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"
    ax.set_title(f"{corr['benchmark']} vs best-of-N gain on {corr['pool']}\n"
                 f"Pearson r = {fmt(r)}, Spearman rho = {fmt(rho)} (n = {corr['n']})", fontsize=9)
    ax.set_xlabel(f"{corr['benchmark']} score")
    ax.set_ylabel("best-of-N gain (top pick - random)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def calibration_plot_file(model: str, suite: str) -> str:
    """Where the reliability diagram of one judge on one suite is written, relative to OUT."""
    return f"plots/calib-{plot_name(model, suite)}.png"


def reliability_plot(model: str, suite: str, calibration: dict[str, Any], path: str) -> None:
    """A judge's reliability diagram (rmorch.suites.judging.judge_calibration): observed share correct against the
    mean predicted probability per bin, the diagonal of perfect calibration, and the number of items per bin."""
    bins = calibration["reliability"]
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.5, 6), dpi=110, sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    ax.plot([b["mean_p"] for b in bins], [b["mean_y"] for b in bins], color="tab:blue", marker="o", linewidth=1.2,
            label=model)
    for b in bins:
        ax.annotate(str(b["count"]), (b["mean_p"], b["mean_y"]), fontsize=6, xytext=(3, -9),
                    textcoords="offset points")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("observed share correct")
    ax.set_title(f"{model} on {suite}: Brier {calibration['brier']:.3f}, ECE {calibration['ece']:.3f}\n"
                 f"candidate shown first in the base order, order-averaged "
                 f"({calibration['n_prob_items']} items, {calibration.get('bins', len(bins))} bins)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    hist.bar([b["lower"] for b in bins], [b["count"] for b in bins],
             width=[b["upper"] - b["lower"] for b in bins], align="edge", color="tab:blue", alpha=0.6,
             edgecolor="white")
    hist.set_xlabel("predicted probability p")
    hist.set_ylabel("items")
    hist.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

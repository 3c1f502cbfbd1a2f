"""The study's PNG plots (matplotlib, Agg; no metadata, so the same numbers give the same bytes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from xstilts.study.verdict import find  # noqa: E402


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return path


def _errorbars(ax: Any, x: list[float], rows: list[dict[str, Any]], label: str) -> None:
    diffs = [100 * r["diff"] for r in rows]
    low = [100 * (r["diff"] - r["low"]) for r in rows]
    high = [100 * (r["high"] - r["diff"]) for r in rows]
    ax.errorbar(x, diffs, yerr=[low, high], fmt="o", capsize=3, label=label)


def by_language(name: str, target: dict[str, Any], out: Path) -> Path:
    """Each init's test score minus ``none`` per language, with its interval."""
    fig, ax = plt.subplots(figsize=(9, 4))
    inits = list(target["by_language_vs_none"])
    for k, init in enumerate(inits):
        per_lang = target["by_language_vs_none"][init]
        langs = list(per_lang)
        offset = (k - (len(inits) - 1) / 2) * 0.8 / max(len(inits), 1)
        _errorbars(ax, [i + offset for i in range(len(langs))], list(per_lang.values()), init)
        ax.set_xticks(range(len(langs)), langs)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel(f"{target['metric']} minus none (points)")
    ax.set_title(f"{name}: each init against no intermediate training, by test language (95% intervals)")
    ax.legend(fontsize=8)
    return _save(fig, out / f"{name}_by_language.png")


def domains(name: str, target: dict[str, Any], out: Path) -> Path | None:
    """In-domain vs out-of-domain zero-shot score per init (targets whose test has unseen domains)."""
    rob = target["robustness"]
    if "zero_shot_ood" not in next(iter(rob.values())):
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    inits = list(rob)
    xs = range(len(inits))
    ax.bar([x - 0.2 for x in xs], [100 * rob[i]["zero_shot_id"] for i in inits], 0.4, label="in-domain")
    ax.bar([x + 0.2 for x in xs], [100 * rob[i]["zero_shot_ood"] for i in inits], 0.4, label="out-of-domain")
    ax.set_xticks(list(xs), inits)
    ax.set_ylabel(f"zero-shot {target['metric']} (%)")
    ax.set_title(f"{name}: trained on {', '.join(target['train_domains'])}; zero-shot languages")
    ax.legend(fontsize=8)
    return _save(fig, out / f"{name}_domains.png")


def group_vs_best(study: dict[str, Any], out: Path) -> Path:
    """The group minus its best member (the group against every member: no member chosen), per target and
    measure, with intervals."""
    rows, labels = [], []
    for name, target in study["targets"].items():
        for measure in target["measures"]:
            c = find(target, measure, "group vs best member")
            if c is None:
                continue
            rows.append(c)
            labels.append(f"{name}\n{measure}")
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(rows)), 4))
    _errorbars(ax, list(range(len(rows))), rows, study["design"]["group"])
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("group minus best member (points)")
    ax.set_title(f"`{study['design']['group']}` against every member, 95% intervals (secondary, unadjusted)")
    return _save(fig, out / "group_vs_best.png")


def retrieval_by_layer(study: dict[str, Any], out: Path) -> Path | None:
    """Mean test top-1 accuracy of each encoder by layer, one panel per retrieval task."""
    tasks = study["retrieval_layers"]
    if not tasks:
        return None
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for ax, (name, encoders) in zip(axes[0], tasks.items(), strict=True):
        for init, by_layer in encoders.items():
            ax.plot(list(by_layer), [100 * v for v in by_layer.values()], marker="o", label=init)
        ax.set_xlabel("layer (-1 = last)")
        ax.set_ylabel("test top-1 accuracy (%)")
        ax.set_title(f"{name}: retrieval by layer")
        ax.legend(fontsize=8)
    return _save(fig, out / "retrieval_by_layer.png")


def dev_curves(curves: dict[str, list[dict[str, Any]]], out: Path) -> Path | None:
    """Each intermediate model's English dev main metric per task, by optimizer step."""
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(8, 4))
    for model, points in curves.items():
        series = sorted({k for p in points for k in p if k.endswith("_train_language")})
        for key in series:
            steps = [p["step"] for p in points if p.get(key) is not None]
            task = key.split("_dev_")[0]
            label = model if task == model else f"{model}: {task}"
            ax.plot(steps, [100 * p[key] for p in points if p.get(key) is not None], marker=".", label=label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("English dev main metric (%)")
    ax.set_title("Intermediate training: dev curves")
    ax.legend(fontsize=7)
    return _save(fig, out / "intermediate_dev_curves.png")


def draw(study: dict[str, Any], out: Path, curves: dict[str, list[dict[str, Any]]]) -> list[Path]:
    """Every plot of the study, under ``out`` (``curves``: the intermediate models' evaluations)."""
    paths = [group_vs_best(study, out)]
    if (path := dev_curves(curves, out)) is not None:
        paths.append(path)
    if (path := retrieval_by_layer(study, out)) is not None:
        paths.append(path)
    for name, target in study["targets"].items():
        paths.append(by_language(name, target, out))
        if (path := domains(name, target, out)) is not None:
            paths.append(path)
    return paths

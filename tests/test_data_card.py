"""The Markdown data card: provenance, license, counts per split x language x domain, label distributions."""

from __future__ import annotations

from test_validation import (
    CLEAN,
    TinyChoice,
    TinyClassification,
    TinyQA,
    TinyTagging,
    bitext_row,
    tag_row,
    write_prepared,
)
from xstilts.data.card import task_card
from xstilts.data.sources import PACKAGES
from xstilts.tasks import get_task
from xstilts.tasks.base import Family


def _section(card: str, task: str) -> str:
    return card.split(f"## {task}\n", 1)[1].split("\n## ", 1)[0]


def test_card_for_registered_tasks(tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_ROOT", str(tmp_path))
    prepared = tmp_path / "data" / "prepared"
    write_prepared(prepared / "multiemo", Family.CLASSIFICATION, CLEAN[TinyClassification])
    rows = [
        bitext_row("udhr-de-1-1", "dev"),
        bitext_row("udhr-fr-1-1", "test", "fr"),
        bitext_row("udhr-de-2-1", "test"),
    ]
    write_prepared(prepared / "udhr", Family.BITEXT, rows)
    card = task_card(get_task("multiemo"), prepared / "multiemo") + task_card(get_task("udhr"), prepared / "udhr")
    assert card.startswith("# Data card\n")
    emo, udhr = _section(card, "multiemo"), _section(card, "udhr")
    task = get_task("multiemo")
    assert f"`{PACKAGES['bigbench'].spec}`" in emo
    assert task.license in emo and task.stands_for in emo
    assert "- Family: classification" in emo and "- Role: target" in emo and "- Metric: accuracy" in emo
    assert "| en | test | 2 | 1 | 0 | 3 |" in emo  # language | domain | train | dev | test | total
    assert "| de | test | 0 | 1 | 1 | 2 |" in emo
    assert "| **all** | — | 2 | 2 | 1 | 5 |" in emo
    # label distribution, in the task's label order (multiemo's labels, then any others)
    assert (
        "| positive | 0 | 0 | 0 | 0 |" in emo and "| yes | 1 | 2 | 1 | 4 |" in emo and "| no | 1 | 0 | 0 | 1 |" in emo
    )
    assert "no rows in split" not in emo
    assert f"`{PACKAGES['udhr'].spec}`" in udhr
    assert "> Note: no rows in split train." in udhr
    assert "| de | test | 0 | 1 | 1 | 2 |" in udhr
    assert "distribution" not in udhr and "Answers" not in udhr  # bitext: no label table


def test_card_label_tables_per_family(tmp_path):
    tags = [f"T{i}" for i in range(20)]

    class ManyTags(TinyTagging):
        labels = tuple(tags)

    write_prepared(tmp_path / TinyChoice.name, Family.MULTIPLE_CHOICE, CLEAN[TinyChoice])
    write_prepared(tmp_path / TinyQA.name, Family.EXTRACTIVE_QA, CLEAN[TinyQA])
    rows = [tag_row("t-1", "train", tokens=["w"] * 40, tags=[tags[i % 20] for i in range(40)])]
    rows.append(tag_row("t-2", "dev", tokens=["w"], tags=["T0"]))
    write_prepared(tmp_path / ManyTags.name, Family.TAGGING, rows)
    card = "".join(task_card(t, tmp_path / t.name) for t in (TinyChoice(), TinyQA(), ManyTags()))
    mc, qa, pos = _section(card, "tinymc"), _section(card, "tinyqa"), _section(card, "tinypos")
    assert "Gold choice index distribution" in mc and "| 0 | 1 | 0 | 1 | 2 |" in mc and "| 1 | 0 | 1 | 0 | 1 |" in mc
    assert "Answers per question" in qa and "| 1 | 1 | 0 | 1 | 2 |" in qa and "| 2 | 0 | 1 | 0 | 1 |" in qa
    assert "Tag distribution (top 15; 5 more tags not shown)" in pos
    assert "| T0 | 2 | 1 | 0 | 3 |" in pos
    assert pos.count("\n| T") == 15
    assert "> Note: no rows in split test." in pos

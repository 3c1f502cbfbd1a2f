"""MultiEmo (via BIG-bench): 4-way sentiment, trained in English, evaluated zero-shot in 10 more languages."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from xstilts.data import splits
from xstilts.data.sources import PACKAGES
from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, Role, Task, register

log = logging.getLogger(__name__)

ROOT = Path("bigbench") / "multiemo"
DOMAINS = ("hotels", "medicine", "products", "reviews")
LEVELS = ("sentence", "text")
LANGUAGES = ("en", "pl", "de", "es", "fr", "it", "ja", "nl", "pt", "ru", "zh")
LABELS = ("negative", "neutral", "positive", "ambivalent")


def load_file(path: Path) -> list[tuple[str, str]]:
    """(text, label) per example of one MultiEmo ``task.json``."""
    if not path.is_file():
        raise XstiltsError(f"{path} is missing; run the extract stage first.")
    rows = []
    for i, ex in enumerate(json.loads(path.read_text(encoding="utf-8")).get("examples", [])):
        scores = ex.get("target_scores") or {}
        gold = [k for k, v in scores.items() if v == 1]
        if not isinstance(ex.get("input"), str) or len(gold) != 1 or gold[0] not in LABELS:
            raise XstiltsError(f"{path} example {i} has no single gold label among {', '.join(LABELS)}.")
        rows.append((ex["input"].strip(), gold[0]))
    return rows


def aligned_prefix(files: dict[str, list[tuple[str, str]]], where: str, strict: bool) -> int:
    """How many leading rows are translations of each other in every language of ``files``.

    The files are meant to hold the same rows in the same order. Where a language has a different
    row count or a different label at some row, the rows from the first disagreement on cannot be
    trusted; with one row dropped or inserted before the disagreement, the labels still agree
    throughout the run of equal English labels that ends there, so the prefix stops before that
    run. ``strict`` raises instead.
    """
    en = [label for _, label in files["en"]]
    end = len(en)
    for lang, rows in files.items():
        n = min(len(rows), len(en))
        first = next((i for i in range(n) if rows[i][1] != en[i]), n)
        if first == n and len(rows) == len(en):
            continue
        msg = f"MultiEmo {where}: {lang} has {len(rows)} rows, en {len(en)}, labels first differ at row {first}"
        if strict:
            raise XstiltsError(msg + "; the languages are not row-aligned (strict_alignment is on).")
        start = first
        while start > 0 and en[start - 1] == en[min(first, len(en)) - 1]:
            start -= 1
        log.warning("%s; using rows 0..%d only for dev/test", msg, start - 1)
        end = min(end, start)
    if end == 0:
        raise XstiltsError(f"MultiEmo {where}: no row is aligned across {', '.join(files)}; the files do not match.")
    return end


@register
class MultiEmoTask(Task):
    """MultiEmo (Kocoń et al., 2021) as packaged in BIG-bench 1.0.0: online reviews (hotels, medicine, products,
    school/university reviews) labelled negative/neutral/positive/ambivalent, at sentence or text level. Polish is the
    human-written original; English and the other nine languages are machine translations of it, row for row. Training
    uses English rows only; dev and test hold the same row ids in every language, so languages are compared on the same
    content, and the split is decided per row id so no dev/test row has a translation in train (whatever train_domains
    and eval_domains are). Ids are '<domain>-<level>-<row>'. Where a language file is not row-aligned with English
    (bigbench 1.0.0: hotels_sentence_de misses a row, medicine_sentence_pt is truncated, hotels_text_pl has an extra
    row, medicine_text_fr has a label that differs), dev/test only use that domain's rows before the misalignment."""

    name = "multiemo"
    family = Family.CLASSIFICATION
    role = Role.TARGET
    labels = LABELS
    languages = LANGUAGES
    original_languages = ("pl",)  # the other ten are machine translations of the Polish reviews
    packages = ("bigbench",)
    stands_for = "XNLI / PAWS-X style sentence classification (zero-shot cross-lingual)"
    license = "BIG-bench (Apache 2.0); MultiEmo's own terms (Kocoń et al. 2021) are not stated in the bigbench sdist"

    defaults: dict[str, Any] = {
        "seed": splits.DEFAULT_SEED,
        "level": "sentence",
        "train_domains": list(DOMAINS),
        "eval_domains": list(DOMAINS),
        "languages": list(LANGUAGES),
        **splits.SIZES,
        **splits.FRACTIONS,
        "strict_alignment": False,
    }

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        p = splits.resolve_params(self.name, params, self.defaults)
        seed, level = p["seed"], p["level"]
        if level not in LEVELS:
            raise XstiltsError(f"Data parameter level for task multiemo must be one of {', '.join(LEVELS)}.")
        train_domains = list(p["train_domains"] or [])
        eval_domains = list(p["eval_domains"] or [])
        languages = list(dict.fromkeys(p["languages"] or []))
        for key, values, known in [
            ("train_domains", train_domains, DOMAINS),
            ("eval_domains", eval_domains, DOMAINS),
            ("languages", languages, LANGUAGES),
        ]:
            bad = [v for v in values if v not in known]
            if bad or not values:
                raise XstiltsError(
                    f"Data parameter {key} for task multiemo must be a non-empty list from {', '.join(known)}; "
                    f"got {values!r}."
                )
        s = splits.SplitSettings.check(self.name, p)
        sizes, dev_fraction, test_fraction = s.sizes, s.dev_fraction, s.test_fraction

        read_langs = ["en"] + [lang for lang in languages if lang != "en"]
        domains = [d for d in DOMAINS if d in train_domains or d in eval_domains]
        data: dict[str, dict[str, list[tuple[str, str]]]] = {}  # domain -> language -> rows
        pools: dict[str, dict[str, tuple[str, int]]] = {"train": {}, "dev": {}, "test": {}}  # id -> (domain, row)
        for domain in domains:
            langs = read_langs if domain in eval_domains else ["en"]
            files = {lang: load_file(Path(raw_dir) / ROOT / f"{domain}_{level}_{lang}" / "task.json") for lang in langs}
            data[domain] = files
            n_aligned = (
                aligned_prefix(files, f"{domain}_{level}", p["strict_alignment"]) if domain in eval_domains else 0
            )
            for row in range(len(files["en"])):
                row_id = f"{domain}-{level}-{row}"
                split = splits.assign_split(row_id, seed, dev_fraction, test_fraction)
                # a row whose text is empty in some language (a few machine translations are) is left out everywhere
                if not all(files[lang][row][0] for lang in langs if row < len(files[lang])):
                    continue
                if split == "train" and domain in train_domains:
                    pools["train"][row_id] = (domain, row)
                elif split != "train" and domain in eval_domains and row < n_aligned:
                    pools[split][row_id] = (domain, row)

        source = PACKAGES["bigbench"].spec
        where = {i: v for pool in pools.values() for i, v in pool.items()}

        def make(split: str, lang: str, row_id: str) -> dict[str, Any]:
            domain, row = where[row_id]
            text, label = data[domain][lang][row]
            return {
                "id": row_id,
                "language": lang,
                "domain": domain,
                "source": source,
                "split": split,
                "text_a": text,
                "text_b": None,
                "label": label,
            }

        rows: dict[str, list[dict[str, Any]]] = {}
        for split in ("train", "dev", "test"):
            chosen = sorted(splits.take(pools[split], sizes[split], seed), key=lambda i: where[i])
            if sizes[split] is not None and len(chosen) < sizes[split]:
                log.warning("multiemo: %s_size=%d but only %d rows exist", split, sizes[split], len(chosen))
            langs = ["en"] if split == "train" else languages
            rows[split] = [make(split, lang, row_id) for lang in langs for row_id in chosen]
        return splits.write_splits(Path(out_dir), self.schema, rows)

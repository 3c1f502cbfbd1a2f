"""VitaminC fact verification (via BIG-bench): the English 3-way NLI intermediate task."""

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

TASK_JSON = Path("bigbench") / "vitaminc_fact_verification" / "task.json"
LABEL_MAP = {"True": "entailment", "False": "contradiction", "Neither": "neutral"}
CLAIM_SEP = "\nClaim: "


def parse_example(i: int, example: dict[str, Any]) -> tuple[str, str, str]:
    """(evidence with its ``Title:`` prefix, claim, label) of one BIG-bench example."""
    text = example.get("input")
    scores = example.get("target_scores")
    if not isinstance(text, str) or CLAIM_SEP not in text or not isinstance(scores, dict):
        raise XstiltsError(f"VitaminC example {i} is not in the BIG-bench format ('<Title>: <evidence>\\nClaim: ...').")
    evidence, _, claim = text.rpartition(CLAIM_SEP)
    gold = [k for k, v in scores.items() if v == 1]
    if len(gold) != 1 or gold[0] not in LABEL_MAP:
        raise XstiltsError(f"VitaminC example {i} has no single gold label among True/False/Neither: {scores}.")
    return evidence.strip(), claim.strip(), LABEL_MAP[gold[0]]


@register
class VitaminCTask(Task):
    """VitaminC (Schuster et al., 2021) as packaged in BIG-bench 1.0.0 (54,668 non-synthetic examples): a Wikipedia
    sentence and a claim; does the sentence support (entailment), refute (contradiction) or not settle (neutral) the
    claim. text_a is the evidence sentence with its '<page title>: ' prefix kept (the title resolves pronouns), text_b
    the claim. VitaminC is contrastive: a claim comes with two evidence revisions and a revision with several claims, so
    splits are grouped by connected component of shared claims and shared evidence: no claim and no evidence passage is
    in two splits. The bigbench 1.0.0 sdist ships no README for this task and declares 'License: UNKNOWN'; the license
    above is that of the VitaminC data (CC BY-SA 3.0) and of BIG-bench (Apache 2.0)."""

    name = "vitaminc"
    family = Family.CLASSIFICATION
    role = Role.INTERMEDIATE
    domains = ("wikipedia",)
    labels = ("entailment", "neutral", "contradiction")
    languages = ("en",)
    packages = ("bigbench",)
    stands_for = "MNLI / ANLI (3-way NLI)"
    license = "CC BY-SA 3.0 (VitaminC, Schuster et al. 2021) via BIG-bench (Apache 2.0)"

    defaults: dict[str, Any] = {"seed": splits.DEFAULT_SEED, **splits.SIZES, **splits.FRACTIONS}

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        s = splits.resolve_splits(self.name, params, self.defaults)
        seed, sizes, dev_fraction, test_fraction = s.seed, s.sizes, s.dev_fraction, s.test_fraction

        path = Path(raw_dir) / TASK_JSON
        if not path.is_file():
            raise XstiltsError(f"{path} is missing; run the extract stage first.")
        examples = json.loads(path.read_text(encoding="utf-8")).get("examples", [])
        if not examples:
            raise XstiltsError(f"{path} holds no examples.")
        parsed = [parse_example(i, ex) for i, ex in enumerate(examples)]

        # Group: claims and evidence passages linked by an example are in one component.
        uf = splits.UnionFind()
        for evidence, claim, _ in parsed:
            uf.union("C\x1f" + claim, "E\x1f" + evidence)
        group_key: dict[str, str] = {}  # root -> smallest claim of its component (order independent)
        for _, claim, _ in parsed:
            root = uf.find("C\x1f" + claim)
            if root not in group_key or claim < group_key[root]:
                group_key[root] = claim

        source = PACKAGES["bigbench"].spec
        by_split: dict[str, dict[str, dict[str, Any]]] = {"train": {}, "dev": {}, "test": {}}
        for i, (evidence, claim, label) in enumerate(parsed):
            key = group_key[uf.find("C\x1f" + claim)]
            split = splits.assign_split("vitaminc-group\x1f" + key, seed, dev_fraction, test_fraction)
            row_id = f"vitaminc-{i:05d}"
            by_split[split][row_id] = {
                "id": row_id,
                "language": "en",
                "domain": "wikipedia",
                "source": source,
                "split": split,
                "text_a": evidence,
                "text_b": claim,
                "label": label,
            }
        rows = {}
        for split, pool in by_split.items():
            chosen = splits.take(pool, sizes[split], seed)
            if sizes[split] is not None and len(chosen) < sizes[split]:
                log.warning("vitaminc: %s_size=%d but only %d rows exist", split, sizes[split], len(chosen))
            rows[split] = [pool[k] for k in sorted(chosen)]
        return splits.write_splits(Path(out_dir), self.schema, rows)

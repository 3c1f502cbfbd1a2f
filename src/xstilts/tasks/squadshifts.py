"""SQuADShifts (via BIG-bench): English extractive QA on four new domains, tested on held-out SQuAD v1.1 dev."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.data import splits
from xstilts.data.sources import PACKAGES
from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, Role, Task, register

log = logging.getLogger(__name__)

ROOT = Path("bigbench") / "squad_shifts"
# domain -> file: the four SQuADShifts domains (Miller et al., 2020), train/dev
DOMAIN_FILES = {
    "new_wiki": "new_wiki_v1.0.json",
    "nyt": "nyt_v1.0.json",
    "reddit": "reddit_v1.0.json",
    "amazon": "amazon_reviews_v1.0.json",
}
DOMAINS = tuple(DOMAIN_FILES)
TEST_DOMAIN, TEST_FILE = "wikipedia", "squaddev_v1.1.json"  # SQuAD v1.1 dev, held out as test


@dataclass
class Question:
    id: str
    domain: str
    group: str  # split unit: the article, or the paragraph where a file holds a single "article"
    context: str
    question: str
    answers_text: list[str]
    answers_start: list[int]


@dataclass
class Dropped:
    answers: int = 0  # answers whose character span does not match their text
    questions: int = 0  # questions left without any answer whose span matches

    def __iadd__(self, other: Dropped) -> Dropped:
        self.answers += other.answers
        self.questions += other.questions
        return self


def read_squad(path: Path, domain: str) -> tuple[list[Question], Dropped]:
    """The questions of one SQuAD-format file, keeping only answers with ``context[s:s+len(t)] == t``.

    Contexts are kept exactly as in the file (not stripped), so the offsets stay valid.
    """
    if not path.is_file():
        raise XstiltsError(f"{path} is missing; run the extract stage first.")
    data = json.loads(path.read_text(encoding="utf-8")).get("data")
    if not isinstance(data, list) or not data:
        raise XstiltsError(f"{path} is not a SQuAD-format file (no 'data' list of articles).")
    by_paragraph = len(data) == 1  # e.g. reddit: all 2,035 comments under one title
    questions, dropped = [], Dropped()
    for a, article in enumerate(data):
        title = str(article.get("title") or a)
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise XstiltsError(f"{path}: article {title!r} paragraph {p} has no context.")
            group = f"{domain}\x1f{title}\x1f{p}" if by_paragraph else f"{domain}\x1f{title}"
            for i, qa in enumerate(paragraph.get("qas", [])):
                texts, starts = [], []
                for ans in qa.get("answers", []):
                    text, start = ans.get("text"), ans.get("answer_start")
                    if isinstance(text, str) and text and isinstance(start, int) and start >= 0:
                        if context[start : start + len(text)] == text:
                            texts.append(text)
                            starts.append(start)
                            continue
                    dropped.answers += 1
                if not texts:
                    dropped.questions += 1
                    continue
                questions.append(
                    Question(
                        id=f"squadshifts-{domain}-{qa.get('id') or f'{a}.{p}.{i}'}",
                        domain=domain,
                        group=group,
                        context=context,
                        question=str(qa.get("question", "")).strip(),
                        answers_text=texts,
                        answers_start=starts,
                    )
                )
    return questions, dropped


@register
class SquadShiftsTask(Task):
    """SQuADShifts (Miller et al., 2020) as packaged in BIG-bench 1.0.0: SQuAD v1.1-style questions with answer spans on
    four domains, new Wikipedia articles (new_wiki, 7,936 questions), New York Times articles (nyt, 10,056), Reddit
    comments (reddit, 9,767) and Amazon product reviews (amazon, 9,877). Train and dev come from these four domains
    (each row keeps its domain), split by article (by comment for reddit, whose file holds all comments under one title)
    with a seeded hash, so no context is in two splits; test is the SQuAD v1.1 dev set shipped alongside (10,565
    questions, domain 'wikipedia'), whose articles are not in the SQuADShifts files. Contexts are kept verbatim; only
    answers with context[start:start+len(text)] == text are kept and questions left without one are dropped (logged;
    bigbench 1.0.0: mostly amazon, whose offsets are often shifted by a few characters). The '*_removed.json' files of
    the package (answers BIG-bench took out) are not used."""

    name = "squadshifts"
    family = Family.EXTRACTIVE_QA
    role = Role.INTERMEDIATE
    # new_wiki, nyt, reddit; amazon (product reviews) covers MultiEmo's products and (online) reviews domains
    domains = ("wikipedia", "news", "reddit", "products", "reviews")
    labels = ()
    languages = ("en",)
    packages = ("bigbench",)
    stands_for = "SQuAD 1.1"
    license = (
        "BIG-bench (Apache 2.0); SQuADShifts (Miller et al. 2020) and SQuAD v1.1 (CC BY-SA 4.0) terms are not "
        "stated in the bigbench sdist"
    )

    defaults: dict[str, Any] = {
        "seed": splits.DEFAULT_SEED,
        "domains": list(DOMAINS),
        "dev_fraction": 0.1,
        **splits.SIZES,
    }

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        p = splits.resolve_params(self.name, params, self.defaults)
        domains = list(dict.fromkeys(p["domains"] or []))
        if not domains or any(d not in DOMAINS for d in domains):
            raise XstiltsError(
                f"Data parameter domains for task squadshifts must be a non-empty list from {', '.join(DOMAINS)}; "
                f"got {p['domains']!r}."
            )
        s = splits.SplitSettings.check(self.name, p)
        seed, sizes, dev_fraction = s.seed, s.sizes, s.dev_fraction

        folder = Path(raw_dir) / ROOT
        pools: dict[str, dict[str, tuple[int, Question]]] = {"train": {}, "dev": {}, "test": {}}
        context_group: dict[str, str] = {}  # a context seen twice joins the group of its first occurrence
        order = 0
        for domain in domains:
            questions, dropped = read_squad(folder / DOMAIN_FILES[domain], domain)
            if dropped.answers:
                log.warning(
                    "squadshifts: %s: dropped %d answers whose span does not match the context, "
                    "and %d questions left without an answer",
                    domain,
                    dropped.answers,
                    dropped.questions,
                )
            for q in questions:
                group = context_group.setdefault(q.context, q.group)
                split = splits.assign_split("squadshifts-group\x1f" + group, seed, dev_fraction, 0.0)
                pools[split][q.id] = (order, q)
                order += 1
        test, dropped = read_squad(folder / TEST_FILE, TEST_DOMAIN)
        if dropped.answers:
            log.warning(
                "squadshifts: %s (SQuAD v1.1 dev): dropped %d answers whose span does not match the context, "
                "and %d questions left without an answer",
                TEST_DOMAIN,
                dropped.answers,
                dropped.questions,
            )
        for q in test:
            pools["test"][q.id] = (order, q)
            order += 1

        source = PACKAGES["bigbench"].spec
        rows: dict[str, list[dict[str, Any]]] = {}
        for split, pool in pools.items():
            chosen = splits.take(pool, sizes[split], seed)
            if sizes[split] is not None and len(chosen) < sizes[split]:
                log.warning("squadshifts: %s_size=%d but only %d rows exist", split, sizes[split], len(chosen))
            rows[split] = [
                {
                    "id": q.id,
                    "language": "en",
                    "domain": q.domain,
                    "source": source,
                    "split": split,
                    "context": q.context,
                    "question": q.question,
                    "answers_text": q.answers_text,
                    "answers_start": q.answers_start,
                }
                for _, q in sorted(pool[k] for k in chosen)
            ]
        return splits.write_splits(Path(out_dir), self.schema, rows)

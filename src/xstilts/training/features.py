"""Turn canonical rows of each family into model inputs (tokenised once, cached by ``datasets``).

Every builder keeps ``id``, ``language`` and ``domain`` and adds ``input_ids``, ``attention_mask`` and ``labels``:

* classification: ``labels`` = label index;
* multiple choice: one (context + question, choice) pair per choice, so ``input_ids`` is a list of token lists;
  ``labels`` = index of the right choice;
* tagging: ``labels`` per token = tag index on the FIRST sub-token of each word, -100 elsewhere;
  ``word_index`` per token = the word's index on that sub-token, -1 elsewhere (maps predictions back to words);
* extractive QA: one row per window of the context (``example_index`` = the example's row), ``labels`` =
  [start token, end token] of the first gold answer, [0, 0] (the CLS token) when it is not inside the window;
  ``offsets`` per token = the token's character span in the context, [-1, -1] for question and special tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import torch
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from xstilts.errors import XstiltsError

KEEP = ("id", "language", "domain")
IGNORE = -100  # label of sub-tokens that carry no prediction (cross-entropy's ignore_index)


def _keep(ds: datasets.Dataset) -> list[str]:
    return [c for c in ds.column_names if c not in KEEP]


def _label_ids(found: set[str], labels: Sequence[str]) -> dict[str, int]:
    label_ids = {label: i for i, label in enumerate(labels)}
    unknown = found - set(label_ids)
    if unknown:
        raise XstiltsError(f"Labels {sorted(unknown)} are not in the task's label set {list(labels)}.")
    return label_ids


def tokenize_classification(
    ds: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, labels: Sequence[str], max_length: int
) -> datasets.Dataset:
    """Add ``input_ids``, ``attention_mask`` and integer ``labels``; keep ``language`` and ``id``."""
    label_ids = _label_ids(set(ds.unique("label")), labels)
    pair = any(b is not None for b in ds["text_b"])

    def encode(batch: dict) -> dict:
        args = (batch["text_a"], batch["text_b"]) if pair else (batch["text_a"],)
        enc = tokenizer(*args, truncation=True, max_length=max_length)
        enc["labels"] = [label_ids[x] for x in batch["label"]]
        return enc

    return ds.map(encode, batched=True, remove_columns=_keep(ds))


def _cut(tokenizer: PreTrainedTokenizerBase, texts: list[str], budgets: list[int]) -> list[str]:
    """Each text cut at the end of its ``budget``-th token (unchanged when it has no more tokens than that)."""
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for text, offsets, budget in zip(texts, enc["offset_mapping"], budgets, strict=True):
        budget = max(budget, 0)
        out.append(text if len(offsets) <= budget else text[: offsets[budget - 1][1]] if budget else "")
    return out


def tokenize_multiple_choice(
    ds: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> datasets.Dataset:
    """One (first, choice) pair per choice, first = context and question joined by a space.

    A context too long for ``max_length`` is cut (at a token boundary) so that the question and the longest
    choice still fit; ``longest_first`` truncation remains as a safety net.
    """
    bad = [i for i, (n, y) in enumerate(zip(ds["choices"], ds["label"], strict=True)) if not n or not 0 <= y < len(n)]
    if bad:
        raise XstiltsError(f"Multiple-choice row {bad[0]} has no choices or a label outside its choices.")
    specials = tokenizer.num_special_tokens_to_add(pair=True)

    def encode(batch: dict) -> dict:
        questions = [q or "" for q in batch["question"]]
        contexts = [c or "" for c in batch["context"]]
        q_len = [len(x) for x in tokenizer(questions, add_special_tokens=False)["input_ids"]]
        choice_len = [
            max(len(x) for x in tokenizer(list(choices), add_special_tokens=False)["input_ids"])
            for choices in batch["choices"]
        ]
        budgets = [max_length - specials - q - c - 1 for q, c in zip(q_len, choice_len, strict=True)]
        contexts = _cut(tokenizer, contexts, budgets)
        firsts, seconds, owner = [], [], []
        for i, (context, question, choices) in enumerate(zip(contexts, questions, batch["choices"], strict=True)):
            first = f"{context} {question}".strip()
            for choice in choices:
                firsts.append(first)
                seconds.append(choice or "")
                owner.append(i)
        enc = tokenizer(firsts, seconds, truncation="longest_first", max_length=max_length)
        out = {"input_ids": [[] for _ in contexts], "attention_mask": [[] for _ in contexts]}
        for j, i in enumerate(owner):
            out["input_ids"][i].append(enc["input_ids"][j])
            out["attention_mask"][i].append(enc["attention_mask"][j])
        out["labels"] = list(batch["label"])
        return out

    return ds.map(encode, batched=True, remove_columns=_keep(ds))


def tokenize_tagging(
    ds: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, labels: Sequence[str], max_length: int
) -> datasets.Dataset:
    """Words tokenised with ``is_split_into_words``; the tag goes on each word's first sub-token.

    Words cut off by ``max_length`` (or that tokenise to nothing) get no prediction; the metrics count them wrong.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise XstiltsError("Tagging needs a fast tokenizer (word_ids); this model's tokenizer is not one.")
    label_ids = _label_ids({t for tags in ds["tags"] for t in tags}, labels)

    def encode(batch: dict) -> dict:
        enc = tokenizer(list(batch["tokens"]), is_split_into_words=True, truncation=True, max_length=max_length)
        all_labels, all_words = [], []
        for i, tags in enumerate(batch["tags"]):
            seen: set[int] = set()
            row_labels, row_words = [], []
            for w in enc.word_ids(i):
                if w is None or w in seen:
                    row_labels.append(IGNORE)
                    row_words.append(-1)
                else:
                    seen.add(w)
                    row_labels.append(label_ids[tags[w]])
                    row_words.append(w)
            all_labels.append(row_labels)
            all_words.append(row_words)
        enc["labels"] = all_labels
        enc["word_index"] = all_words
        return enc

    return ds.map(encode, batched=True, remove_columns=_keep(ds))


def qa_stride(max_length: int, stride: int | None = None) -> int:
    """Overlap (in tokens) between consecutive windows of a long context; default ``max_length // 4``."""
    return max_length // 4 if stride is None else stride


def tokenize_qa(
    ds: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int, stride: int | None = None
) -> datasets.Dataset:
    """SQuAD-style windows: question first, context second (``only_second`` truncation with overlap ``stride``).

    Questions are cut to ``max_length // 4`` tokens so a window always has room for context beyond the overlap.
    Rows keep ``example_index`` (the example's row in ``ds``) and the original ``context`` is not copied: decode
    with :func:`xstilts.training.evaluation.decode_qa` against the examples.
    """
    stride = qa_stride(max_length, stride)
    max_query = max(1, max_length // 4)
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    if max_length - specials - max_query <= stride:
        raise XstiltsError(
            f"QA windows of max_length {max_length} leave no context beyond the overlap of {stride} tokens; "
            "raise max_length or lower the stride."
        )
    pad_right = tokenizer.padding_side == "right"
    if not pad_right:
        raise XstiltsError("Extractive QA expects a tokenizer that pads on the right.")

    def encode(batch: dict, indices: list[int]) -> dict:
        questions = _cut(tokenizer, [(q or "").lstrip() for q in batch["question"]], [max_query] * len(indices))
        contexts = [c or "" for c in batch["context"]]
        enc = tokenizer(
            questions,
            contexts,
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        owners = enc.pop("overflow_to_sample_mapping")
        offsets_in, out_offsets, out_labels, out_index = enc.pop("offset_mapping"), [], [], []
        keep = {k: [] for k in KEEP}
        for j, owner in enumerate(owners):
            sequence_ids = enc.sequence_ids(j)
            offsets = [list(o) if s == 1 else [-1, -1] for o, s in zip(offsets_in[j], sequence_ids, strict=True)]
            start_token = end_token = 0
            if batch["answers_text"][owner]:
                start_char = int(batch["answers_start"][owner][0])
                end_char = start_char + len(batch["answers_text"][owner][0])
                context_tokens = [t for t, s in enumerate(sequence_ids) if s == 1]
                if (
                    context_tokens
                    and offsets[context_tokens[0]][0] <= start_char
                    and offsets[context_tokens[-1]][1] >= end_char
                ):
                    start_token = next(t for t in context_tokens if offsets[t][1] > start_char)
                    end_token = next(t for t in reversed(context_tokens) if offsets[t][0] < end_char)
                    if end_token < start_token:  # an answer inside one token
                        end_token = start_token
            out_offsets.append(offsets)
            out_labels.append([start_token, end_token])
            out_index.append(indices[owner])
            for k in KEEP:
                keep[k].append(batch[k][owner])
        return {**enc, "labels": out_labels, "offsets": out_offsets, "example_index": out_index, **keep}

    return ds.map(encode, batched=True, with_indices=True, remove_columns=ds.column_names)


class Collator:
    """Dynamic padding of the model columns; other columns are dropped.

    Classification, tagging and QA rows are padded to the longest row of the batch (tagging ``labels`` with
    -100); multiple-choice rows to ``[batch, most choices, longest pair]``, padding choices all padding
    tokens with an all-zero attention mask (the model scores them :data:`~xstilts.modeling.MASKED_SCORE`).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, family: str = "classification") -> None:
        self.family = family
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.pad = DataCollatorWithPadding(tokenizer, return_tensors="pt")

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        if self.family == "multiple_choice":
            return self._choices(rows)
        if self.family == "tagging":
            length = max(len(r["input_ids"]) for r in rows)
            ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), length), dtype=torch.long)
            labels = torch.full((len(rows), length), IGNORE, dtype=torch.long)
            for i, r in enumerate(rows):
                n = len(r["input_ids"])
                ids[i, :n] = torch.as_tensor(r["input_ids"])
                mask[i, :n] = torch.as_tensor(r["attention_mask"])
                labels[i, :n] = torch.as_tensor(r["labels"])
            return {"input_ids": ids, "attention_mask": mask, "labels": labels}
        model_rows = [{k: r[k] for k in ("input_ids", "attention_mask", "labels")} for r in rows]
        return self.pad(model_rows)

    def _choices(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        n_choices = max(len(r["input_ids"]) for r in rows)
        length = max(len(x) for r in rows for x in r["input_ids"])
        ids = torch.full((len(rows), n_choices, length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), n_choices, length), dtype=torch.long)
        for i, r in enumerate(rows):
            for c, (x, m) in enumerate(zip(r["input_ids"], r["attention_mask"], strict=True)):
                ids[i, c, : len(x)] = torch.as_tensor(x)
                mask[i, c, : len(m)] = torch.as_tensor(m)
        labels = torch.as_tensor([r["labels"] for r in rows], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def tokenize(
    family: str,
    ds: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    labels: Sequence[str],
    max_length: int,
    stride: int | None = None,
) -> datasets.Dataset:
    """The builder for ``family``."""
    if family == "classification":
        return tokenize_classification(ds, tokenizer, labels, max_length)
    if family == "multiple_choice":
        return tokenize_multiple_choice(ds, tokenizer, max_length)
    if family == "tagging":
        return tokenize_tagging(ds, tokenizer, labels, max_length)
    if family == "extractive_qa":
        return tokenize_qa(ds, tokenizer, max_length, stride)
    raise XstiltsError(f"Family {family!r} cannot be trained (no feature builder).")


def lengths(family: str, features: datasets.Dataset) -> list[int]:
    """Per-row size for length-grouped batching: tokens, or choices x longest pair for multiple choice."""
    if family == "multiple_choice":
        return [len(x) * max(len(c) for c in x) for x in features["input_ids"]]
    return [len(x) for x in features["input_ids"]]

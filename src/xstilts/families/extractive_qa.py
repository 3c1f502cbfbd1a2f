"""Extractive QA: context + question -> answer span(s) by character offset (SQuAD, MLQA, ParsiNLU reading).

Metrics: ``exact_match`` and ``f1`` (the main metric; SQuAD v1.1, fractions in [0, 1], see
:mod:`xstilts.families.squad_metric`); tasks with unanswerable questions: SQuAD 2.0 ``exact_match`` and ``f1``,
plus ``has_ans_f1`` and ``no_ans_f1``.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from xstilts.errors import XstiltsError
from xstilts.families.base import (
    KEEP,
    MASKED_SCORE,
    Baseline,
    Evaluation,
    Family,
    FamilySpec,
    all_true,
    as_list,
    constant_evaluation,
    cut,
    non_empty,
    softmax,
)
from xstilts.families.squad_metric import squad_scores

FIRST_WORDS = 10  # the longest "first k words of the context" answer the trivial baseline tries

N_BEST = 20
MAX_ANSWER_TOKENS = 30


def qa_stride(max_length: int, stride: int | None = None) -> int:
    """Overlap (in tokens) between consecutive windows of a long context; default ``max_length // 4``."""
    return max_length // 4 if stride is None else stride


def _spans(
    start: np.ndarray, end: np.ndarray, spans: Sequence[Sequence[int]], n_best: int, max_answer_tokens: int
) -> list[tuple[float, int, int]]:
    """(start + end logit, start char, end char) of one window's candidate spans among its top ``n_best`` tokens."""
    starts = np.argsort(start, kind="stable")[::-1][:n_best]
    ends = np.argsort(end, kind="stable")[::-1][:n_best]
    out = []
    for s in starts:
        if spans[s][0] < 0:
            continue
        for t in ends:
            if spans[t][0] < 0 or t < s or t - s + 1 > max_answer_tokens:
                continue
            out.append((float(start[s] + end[t]), spans[s][0], spans[t][1]))
    return out


def decode_qa(*args: Any, **kwargs: Any) -> tuple[list[str], list[float]]:
    """Best answer text per example and its probability: :func:`decode_qa_spans` without the start offsets."""
    texts, _, confidence = decode_qa_spans(*args, **kwargs)
    return texts, confidence


def decode_qa_spans(
    contexts: Sequence[str],
    example_index: Sequence[int],
    offsets: Sequence[Sequence[Sequence[int]]],
    logits: Sequence[np.ndarray],
    n_best: int = N_BEST,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
    allow_no_answer: bool = False,
    null_threshold: float = 0.0,
) -> tuple[list[str], list[int], list[float]]:
    """Best answer text per example over all its windows, its character start (-1: empty) and its probability
    among the candidates.

    Per window: the ``n_best`` highest start and end logits; a candidate needs both tokens in the context
    (offset not [-1, -1]), end >= start and at most ``max_answer_tokens`` tokens; its score is start + end
    logit and its text ``context[start offset : end offset]``. No candidate: the empty answer.

    ``allow_no_answer`` (SQuAD 2.0, as transformers' ``run_qa`` post-processing): the null score is the CLS
    token's (position 0) start + end logit, the minimum over the example's windows; the answer is empty when the
    null score exceeds the best span's by more than ``null_threshold``. The null score then joins the candidates
    whose softmax gives the probability.
    """
    windows: dict[int, list[int]] = defaultdict(list)
    for j, e in enumerate(example_index):
        windows[e].append(j)
    texts, starts, confidence = [], [], []
    for e, context in enumerate(contexts):
        candidates: list[tuple[float, int, int]] = []
        for j in windows.get(e, []):
            candidates += _spans(logits[j][:, 0], logits[j][:, 1], offsets[j], n_best, max_answer_tokens)
        scores = [c[0] for c in candidates]
        best = int(np.argmax(scores)) if candidates else -1
        if allow_no_answer and windows.get(e):
            null = min(float(logits[j][0, 0] + logits[j][0, 1]) for j in windows[e])
            probs = softmax(np.asarray([*scores, null]))
            empty = not candidates or null - scores[best] > null_threshold
            span, p = ((0, -1, -1), probs[-1]) if empty else (candidates[best], probs[best])
        elif candidates:
            span, p = candidates[best], softmax(np.asarray(scores))[best]
        else:
            span, p = (0, -1, -1), 0.0
        texts.append(context[span[1] : span[2]] if span[1] >= 0 else "")
        starts.append(span[1])
        confidence.append(float(p))
    return texts, starts, confidence


def _inside(c: str, ts: list, ss: list) -> bool:
    return all(
        isinstance(t, str) and t and s is not None and 0 <= s and s + len(t) <= len(c)
        for t, s in zip(ts, ss, strict=False)
    )


def _matches(c: str, ts: list, ss: list) -> bool:
    return all(
        isinstance(t, str) and s is not None and s >= 0 and c[s : s + len(t)] == t for t, s in zip(ts, ss, strict=False)
    )


class ExtractiveQA(FamilySpec):
    """Every token -> ``[batch, seq, 2]`` (start, end) logits over SQuAD-style windows of the context.

    Features: one row per window (``example_index`` = the example's row), ``labels`` = [start token, end token]
    of the first gold answer, [0, 0] (the CLS token) when it is not inside the window; ``offsets`` per token =
    its character span in the context, [-1, -1] for question and special tokens.
    """

    family = Family.EXTRACTIVE_QA
    # answers_start[i]: character offset of answers_text[i] in context (context[s:s+len(t)] == t)
    columns = [
        ("context", pa.string()),
        ("question", pa.string()),
        ("answers_text", pa.list_(pa.string())),
        ("answers_start", pa.list_(pa.int64())),
    ]
    metric = "f1"
    needs_examples = True
    per_token = True
    windowed = True
    counts = ("Answers per question", "answers")

    def add_helpers(self, df: Any, task: Any) -> None:
        texts = [as_list(t) or [] for t in df["answers_text"].tolist()]
        starts = [as_list(s) or [] for s in df["answers_start"].tolist()]
        contexts = [c if isinstance(c, str) else "" for c in df["context"].tolist()]
        df["n_answers"] = [len(t) for t in texts]
        df["answers_aligned"] = [len(t) == len(s) for t, s in zip(texts, starts, strict=True)]
        df["answer_span_inside_context"] = [_inside(*x) for x in zip(contexts, texts, starts, strict=True)]
        df["answer_span_matches"] = [_matches(*x) for x in zip(contexts, texts, starts, strict=True)]

    def expectations(self, gx: Any, task: Any) -> list:
        return [
            *non_empty(gx, "context", "the passage answers are taken from"),
            *non_empty(gx, "question", "the question asked"),
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="n_answers",
                min_value=0 if getattr(task, "unanswerable", False) else 1,
                description="every row has an answer (SQuAD 2.0-style tasks may have none)",
            ),
            all_true(gx, "answers_aligned", "answers_text and answers_start must have the same length"),
            all_true(gx, "answer_span_inside_context", "every answer span must be non-empty and inside its context"),
            all_true(gx, "answer_span_matches", "context[start:start+len(text)] must equal the answer text"),
        ]

    def baseline(self, train, test, labels, allow_no_answer=False):
        """The better on train (mean F1) of the empty answer and the context's first k words (k up to
        :data:`FIRST_WORDS`; ties: the empty answer, then the smaller k)."""

        def answers(rows, k: int) -> list[str]:
            return [" ".join(str(c).split()[:k]) for c in rows["context"]]

        golds = [list(a) for a in train["answers_text"]]
        mean_f1 = {}
        for n in range(FIRST_WORDS + 1):
            mean_f1[n] = float(np.mean(squad_scores(answers(train, n), golds, allow_no_answer)["f1"]))
        k = min(mean_f1, key=lambda n: (-mean_f1[n], n))
        test_golds = [list(a) for a in test["answers_text"]]
        guesses = answers(test, k)
        scores = squad_scores(guesses, test_golds, allow_no_answer)
        correct = {name: np.asarray(values, dtype=float) for name, values in scores.items()}
        shown = [json.dumps(g, ensure_ascii=False) for g in test_golds]
        evaluation = constant_evaluation(self.family, labels, test, shown, guesses, correct=correct)
        return Baseline(evaluation, "the empty answer" if k == 0 else f"the context's first {k} words")

    def label_counts(self, rows: list[dict[str, Any]]) -> Counter:
        return Counter(len(r.get("answers_text") or []) for r in rows)

    def tokenize(self, ds, tokenizer, labels, max_length, stride=None):
        """Question first, context second (``only_second`` truncation with overlap ``stride``).

        Questions are cut to ``max_length // 4`` tokens so a window always has room for context beyond the
        overlap. The original ``context`` is not copied: :func:`decode_qa` reads it from the examples.
        """
        stride = qa_stride(max_length, stride)
        max_query = max(1, max_length // 4)
        specials = tokenizer.num_special_tokens_to_add(pair=True)
        if max_length - specials - max_query <= stride:
            raise XstiltsError(
                f"QA windows of max_length {max_length} leave no context beyond the overlap of {stride} tokens; "
                "raise max_length or lower the stride."
            )
        if tokenizer.padding_side != "right":
            raise XstiltsError("Extractive QA expects a tokenizer that pads on the right.")

        def encode(batch: dict, indices: list[int]) -> dict:
            questions = cut(tokenizer, [(q or "").lstrip() for q in batch["question"]], [max_query] * len(indices))
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
                out_offsets.append(offsets)
                out_labels.append(_answer_tokens(batch, owner, offsets, sequence_ids))
                out_index.append(indices[owner])
                for k in KEEP:
                    keep[k].append(batch[k][owner])
            return {**enc, "labels": out_labels, "offsets": out_offsets, "example_index": out_index, **keep}

        return ds.map(encode, batched=True, with_indices=True, remove_columns=ds.column_names)

    def head_width(self, task, labels):
        return 2

    def loss(self, logits, batch):
        """Mean of the start and end cross-entropies over the real tokens: ``[B, T, 2]`` vs ``[B, 2]``."""
        import torch

        labels = batch["labels"]
        logits = logits.float().masked_fill((batch["attention_mask"] == 0).unsqueeze(-1), MASKED_SCORE)
        start = torch.nn.functional.cross_entropy(logits[..., 0], labels[:, 0])
        end = torch.nn.functional.cross_entropy(logits[..., 1], labels[:, 1])
        return (start + end) / 2

    def evaluate(self, outputs, examples, features, labels, allow_no_answer=False, null_threshold=0.0):
        texts, conf = decode_qa(
            examples["context"],
            features["example_index"],
            features["offsets"],
            outputs,
            allow_no_answer=allow_no_answer,
            null_threshold=null_threshold,
        )
        golds = [list(a) for a in examples["answers_text"]]
        scores = squad_scores(texts, golds, allow_no_answer)
        return Evaluation.of(
            self.family,
            labels,
            examples,
            gold=[json.dumps(g, ensure_ascii=False) for g in golds],
            prediction=texts,
            confidence=conf,
            correct={name: np.asarray(values, dtype=float) for name, values in scores.items()},
        )


def _answer_tokens(batch: dict, owner: int, offsets: list[list[int]], sequence_ids: list) -> list[int]:
    """[start token, end token] of the first gold answer in one window; [0, 0] when it is not inside."""
    if not batch["answers_text"][owner]:
        return [0, 0]
    start_char = int(batch["answers_start"][owner][0])
    end_char = start_char + len(batch["answers_text"][owner][0])
    context_tokens = [t for t, s in enumerate(sequence_ids) if s == 1]
    if not context_tokens or offsets[context_tokens[0]][0] > start_char or offsets[context_tokens[-1]][1] < end_char:
        return [0, 0]
    start_token = next(t for t in context_tokens if offsets[t][1] > start_char)
    end_token = next(t for t in reversed(context_tokens) if offsets[t][0] < end_char)
    return [start_token, max(end_token, start_token)]  # an answer inside one token: end = start

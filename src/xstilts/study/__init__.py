"""The study: does multi-task intermediate training make zero-shot transfer more robust to domain shift?

``params.yaml`` ``study.group`` names the multi-task group G; its members are each trained alone too, and every
target and retrieval task is scored from ``none``, each member and G (:class:`~xstilts.study.runs.Design`).
:mod:`~xstilts.study.gate` diagnoses whether each task head learned its own task (it never vetoes); from every
run's per-example test predictions (:mod:`~xstilts.study.runs`), :mod:`~xstilts.study.analysis` splits the rows
by language and domain and compares the inits, paired by seed, with intervals that count the seeds and the test
set (:mod:`~xstilts.study.intervals`, :mod:`~xstilts.study.bootstrap`); the group is compared with every member
(:mod:`~xstilts.study.primary`); :mod:`~xstilts.study.verdict` answers per target from one set of numbers (none
from fewer than ``study.min_seeds`` seeds), :mod:`~xstilts.study.prose` writes it in words, and
:mod:`~xstilts.study.document` and :mod:`~xstilts.study.plots` write ``reports/study.{json,md}`` and the PNGs.
"""

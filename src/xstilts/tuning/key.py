"""What phase 2 needs of a study, without Optuna: the study's key and its result file ``tuning/<task>.yaml``.

Kept apart from :mod:`xstilts.tuning.study` and :mod:`xstilts.tuning.results` so that training stages depend
on these few lines only, not on the storage, trial and plotting code (``reports/code/training.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from xstilts.digest import fingerprint
from xstilts.errors import XstiltsError
from xstilts.params import TuneParams
from xstilts.paths import prepared_dir, repo_root
from xstilts.training import checkpoint

if TYPE_CHECKING:
    from xstilts.pipeline.run_plan import RunPlan


def search_space(tune: TuneParams) -> dict[str, Any]:
    return {"lr": {**tune.lr.model_dump(), "log": True}, "epochs": tune.epochs.model_dump()}


def budget(tune: TuneParams) -> dict[str, Any]:
    """Everything but the space that decides a study's result (``n_trials`` included)."""
    return tune.model_dump(include={"n_trials", "sampler", "grid", "pruner", "evaluations", "warmup_evaluations",
                                    "startup_trials", "train_rows", "dev_rows"})  # fmt: skip


def study_key(plan: RunPlan, tune: TuneParams) -> str:
    """A hash of the space, the budget (but ``n_trials``: more trials continue a study), the seed, the untuned
    settings, the encoder and the data's contents: equal keys mean the same study, on any machine (so
    ``tuning/<task>.yaml``, which names the study, is the same file for the same inputs)."""
    config = {
        "tasks": [t.name for t in plan.tasks],
        "space": search_space(tune),
        "budget": {k: v for k, v in budget(tune).items() if k != "n_trials"},
        "seed": plan.params.seed,
        # tuning starts from the pretrained encoder: its name and pinned commit, wherever it is read from (a mirror)
        "encoder": plan.params.model.name,
        **({"revision": plan.params.model.revision} if plan.params.model.revision else {}),
        "cfg": plan.cfg.model_dump(),
        "data": {t.name: fingerprint(prepared_dir(t.name)) for t in plan.tasks},
    }
    return checkpoint.config_hash(config)


def result_path(out_name: str) -> Path:
    return repo_root() / "tuning" / f"{out_name}.yaml"


def read_result(out_name: str, key: str) -> dict[str, Any]:
    """``tuning/<task>.yaml`` for the current settings; fails when missing, unreadable, or tuned for others."""
    path = result_path(out_name)
    fix = f"run `dvc repro tune-{out_name}` (or `xstilts tune --task {out_name}`)"
    if not path.exists():
        raise XstiltsError(f"{out_name} is in tune.tasks but {path} does not exist; {fix} first.")
    try:
        result = yaml.safe_load(path.read_text())
        ok = isinstance(result, dict) and {"lr", "epochs", "key", "study"} <= set(result)
    except (OSError, yaml.YAMLError):
        ok = False
    if not ok:
        raise XstiltsError(f"{path} is not a tuning result; {fix}.")
    if result["key"] != key:
        raise XstiltsError(f"{path} was tuned for other settings (study {result['study']}); {fix}.")
    return result

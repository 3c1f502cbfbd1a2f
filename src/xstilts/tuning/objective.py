"""One trial: phase 2's training with the trial's lr and epochs, on the study's rows, reporting each evaluation."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

from accelerate.utils import set_seed

from xstilts.encoder.loading import load_encoder
from xstilts.errors import XstiltsError
from xstilts.families.extractive_qa import qa_stride
from xstilts.modeling import HeadSpec, MultiTaskModel
from xstilts.params import TuneParams
from xstilts.pipeline.run_names import encoder_revision
from xstilts.pipeline.run_plan import RunPlan
from xstilts.pipeline.train_and_evaluate import prepare_task
from xstilts.training.loop import MultiTaskResult, TaskData, train_tasks
from xstilts.training.sampling import SamplingConfig

Report = Callable[[int, float, dict[str, float]], None]  # (evaluation number, objective value, logged values)


@dataclass
class StudyData:
    """What every trial of a study shares: the tokenized rows, the pristine encoder and the untuned plan."""

    plan: RunPlan
    encoder: object
    data: list[TaskData]
    sampling: SamplingConfig

    @property
    def key(self) -> str:
        """The logged value the objective reads: the multi-task mean, or the one task's dev metric."""
        tasks = self.plan.tasks
        if len(tasks) > 1:
            return "dev_main_metric_mean"
        return f"{tasks[0].name}_dev_{tasks[0].metric}_train_language"


def study_data(plan: RunPlan, tune: TuneParams) -> StudyData:
    """Load the encoder once and tokenize each task's seeded train/dev subsets (``tune.train_rows``, ``dev_rows``)."""
    tokenizer, encoder = load_encoder(plan.encoder, encoder_revision(plan.encoder, plan.params))
    cfg = plan.cfg
    stride = qa_stride(cfg.max_length, None)
    data = [
        prepare_task(t, tokenizer, cfg, stride, tune.train_rows, tune.dev_rows, plan.params.seed).data
        for t in plan.tasks
    ]
    if not all(d.dev is not None and len(d.dev) for d in data):
        missing = [d.task for d in data if d.dev is None or not len(d.dev)]
        raise XstiltsError(f"Tuning needs English dev rows to score trials; {', '.join(missing)} has none.")
    sampling = SamplingConfig(cfg.sampling, cfg.temperature, cfg.examples_cap)
    return StudyData(plan, encoder, data, sampling)


def run_trial(study: StudyData, lr: float, epochs: float, evaluations: int, report: Report) -> MultiTaskResult:
    """Train a fresh copy of the encoder (heads seeded like phase 2's) and return the loop's result.

    ``report`` sees every evaluation and may raise (``optuna.TrialPruned``) to stop the trial there."""
    plan = study.plan
    cfg = plan.cfg.model_copy(update={"lr": lr, "epochs": epochs})
    set_seed(plan.params.seed)
    heads = [HeadSpec(t.name, t.family.value, list(t.labels)) for t in plan.tasks]
    model = MultiTaskModel(copy.deepcopy(study.encoder), heads)
    done = 0

    def on_eval(step: int, values: dict[str, float]) -> None:
        nonlocal done
        done += 1
        value = values[study.key]
        report(done, -math.inf if math.isnan(value) else value, values)

    return train_tasks(
        model, study.data, cfg, plan.params.seed, sampling=study.sampling, on_eval=on_eval, evaluations=evaluations
    )

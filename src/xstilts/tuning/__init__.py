"""Optuna tunes the learning rate and the number of epochs of each intermediate task (``tune.tasks``).

One study per task spec (a task, a comma list or a group) and setting: its name carries a hash of the search
space, the budget, the seed, the untuned phase-2 settings and the data, so a change to any of them starts a new
study while a rerun of the same command continues the old one (:mod:`xstilts.tuning.study`). Trial 0 holds the
untuned values (``intermediate`` with ``per_task``), so the best trial is never worse on dev than no tuning.

**The objective** is the English dev main metric phase 2 picks its checkpoint by (for several tasks, the mean
of their metrics): each trial's best evaluation, on the study's seeded subset of the train and dev rows.

**Pruning compares trials at the same fraction of their own schedule.** Every trial evaluates ``evaluations``
times, evenly spaced over its own linear warm-up + decay, and reports evaluation *k* as step *k*. With a
schedule that decays to zero at the last step, step *s* of a 1-epoch trial sits at the end of its decay while
step *s* of a 4-epoch trial is still near its peak learning rate, so raw steps would compare a finished run
with an unfinished one. At the same fraction every trial is at the same point of its schedule (the same share
of warm-up done, the same learning-rate multiplier), and a trial's final value is its value at fraction 1, so
the pruner's question, "is this trial behind the others at this point of its run?", is asked like for like.
Pruning starts after ``warmup_evaluations`` (and, for the median pruner, ``startup_trials`` finished trials):
NLI sits at its label prior for hundreds of steps, so early evaluations say little.
"""

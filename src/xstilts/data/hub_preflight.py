"""``xstilts hub check`` and ``xstilts hub download``: the profile's Hub data and model, checked and mirrored.

The check resolves, for every hub task in ``data.tasks``, each dataset it reads (repository, pinned commit,
configs, splits and the files its loader will read) and the model's files at ``model.revision``, from metadata
only (:mod:`xstilts.data.hub_files`): against the Hub, or against the mirror when ``data.hub_mirror`` is set.
The download fetches exactly those files (``huggingface_hub.snapshot_download`` with the commit and the file
names) into ``DIR/datasets/<id>/`` and ``DIR/models/<id>/``, each with its commit in ``.xstilts-revision``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from xstilts.data import hub
from xstilts.data.hub_files import (
    DatasetNeed,
    dataset_needs,
    folder_listing,
    hub_model_listing,
    model_files,
    resolve_dataset,
)
from xstilts.encoder.loading import is_hub_id
from xstilts.errors import XstiltsError
from xstilts.params import Params, hub_mirror
from xstilts.tasks import get_task

HEADER = ("task", "repository", "revision", "configs", "splits", "files", "status")


@dataclass
class Row:
    """One line of the table: a task's dataset (or the model), what it resolved to, and OK or what is wrong."""

    task: str
    repository: str
    revision: str | None
    configs: int = 0
    splits: int = 0
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def cells(self) -> tuple[str, ...]:
        status = "OK" if self.ok else "; ".join(self.problems)
        revision = self.revision[:12] if self.revision else "-"
        return (self.task, self.repository, revision, str(self.configs), str(self.splits), str(len(self.files)), status)


def require_hub(command: str, instead: str) -> None:
    """Stop with one sentence when this machine cannot reach the Hub (``instead``: what to do then)."""
    if hub.hub_offline():
        why = "HF_HUB_OFFLINE=1 keeps this machine off it"
    elif not hub.hub_reachable(hub.hub_endpoint()):
        why = f"{hub.hub_endpoint()} is unreachable from this machine"
    else:
        return
    raise XstiltsError(f"`xstilts hub {command}` needs the Hugging Face Hub, and {why}; {instead}.")


def _dataset_row(task: str, need: DatasetNeed, mirror: Path | None) -> Row:
    row = Row(task, need.path, need.revision, len(need.splits), sum(len(s) for s in need.splits.values()))
    try:
        folder = None if mirror is None else hub.mirrored_repo(mirror, "datasets", need.path, need.revision)
    except XstiltsError as exc:
        row.problems.append(str(exc).rstrip("."))
        return row
    found = resolve_dataset(need, folder)
    row.files, row.problems = found.files, found.problems
    return row


def task_rows(params: Params, mirror: Path | None) -> list[Row]:
    """A row per dataset of every hub task in ``data.tasks`` (an unpinned task: one row saying so)."""
    rows: list[Row] = []
    for name in params.data.tasks:
        task = get_task(name, source=params.data.source)
        if not hasattr(task, "hub_reads"):
            continue  # registry packages or a Google Research release: not on the Hub
        try:
            reads = task.hub_reads()
        except XstiltsError as exc:
            pin = getattr(task, "pin", None)
            rows.append(Row(name, getattr(pin, "path", "?"), None, problems=[str(exc).rstrip(".")]))
            continue
        rows += [_dataset_row(name, need, mirror) for need in dataset_needs((name, s, split) for s, split in reads)]
    return rows


def model_row(params: Params, mirror: Path | None) -> Row | None:
    """The model's row when ``model.name`` is a Hub id (None for a local or offline model)."""
    name, revision = params.model.name, params.model.revision
    if not is_hub_id(name):
        return None
    row = Row("model", name, revision)
    if revision is None:
        row.problems.append(f"not pinned; set model.revision to a commit of {name}")
        return row
    try:
        listing = (
            hub_model_listing(name, revision)
            if mirror is None
            else folder_listing(hub.mirrored_repo(mirror, "models", name, revision))
        )
    except XstiltsError as exc:
        row.problems.append(str(exc).rstrip("."))
        return row
    row.files, problems = model_files(listing)
    row.problems += problems
    return row


def check(params: Params) -> tuple[list[Row], Path | None]:
    """Every row of the profile, against the mirror when ``data.hub_mirror`` is set, else against the Hub."""
    hub_tasks = [n for n in params.data.tasks if hasattr(get_task(n, source=params.data.source), "hub_reads")]
    if not hub_tasks and not is_hub_id(params.model.name):
        raise XstiltsError(
            f"Profile {params.profile!r} reads nothing from the Hugging Face Hub (no hub task in data.tasks, model "
            f"{params.model.name}); `xstilts profile paper` switches to the paper's hub setting."
        )
    mirror = hub_mirror(params)
    if mirror is None:
        require_hub("check", "set data.hub_mirror to check a mirror that `xstilts hub download` wrote instead")
    rows = task_rows(params, mirror)
    if (model := model_row(params, mirror)) is not None:
        rows.append(model)
    return rows, mirror


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned text table under a header."""
    lines = [HEADER, *(r.cells() for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(line, widths, strict=False)), line[-1]]) for line in lines)


def _fetch(kind: str, repo_id: str, revision: str, files: list[str], dest: Path) -> Path:
    """``snapshot_download`` of exactly ``files`` at ``revision`` into ``dest/<kind>s/<repo_id>`` (replaced whole)."""
    from huggingface_hub import snapshot_download

    folder = dest / f"{kind}s" / repo_id
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    snapshot_download(repo_id, repo_type=kind, revision=revision, allow_patterns=files, local_dir=partial)
    shutil.rmtree(partial / ".cache", ignore_errors=True)  # huggingface_hub's download bookkeeping, not the data
    (partial / hub.REVISION_FILE).write_text(revision + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def download(params: Params, dest: Path) -> list[Row]:
    """Mirror every dataset and the model the check finds in order into ``dest``; rows with problems are skipped
    (the caller reports them)."""
    require_hub("download", "run it on a machine with internet (a login node), then copy the folder over")
    rows = task_rows(params, None)
    model = model_row(params, None)
    files: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        if row.ok and row.revision:
            files.setdefault((row.repository, row.revision), []).extend(row.files)
    for (repo_id, revision), names in files.items():
        _fetch("dataset", repo_id, revision, list(dict.fromkeys(names)), dest)
    if model is not None:
        rows.append(model)
        if model.ok and model.revision:
            _fetch("model", model.repository, model.revision, model.files, dest)
    return rows

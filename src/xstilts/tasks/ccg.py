"""CCG supertagging from a local CCGbank (LDC2005T13): CCGbank is LDC-licensed, so nothing downloads it.

``data.ccg.path`` in params.yaml names the CCGbank folder (the one holding ``data/AUTO/<section>/*.auto``, or
the ``AUTO`` folder itself). Sections 02-21 train, 00 dev, 23 test (the usual split). Every leaf of an AUTO
derivation, ``(<L category POS POS word predicate-argument-category>)``, gives one word and its supertag. The
tag set is the categories seen at least ``min_tag_count`` times in train (default 10, after Clark & Curran,
2007); rarer categories become ``UNK``. It is written to ``labels.json`` next to the splits.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from xstilts.data import splits
from xstilts.errors import XstiltsError
from xstilts.paths import prepared_dir
from xstilts.tasks.base import Family, HubTask, Role, register

LEAF = re.compile(r"\(<L (\S+) (\S+) (\S+) (\S+) (\S+)>\)")
SECTIONS = {"train": [f"{s:02d}" for s in range(2, 22)], "dev": ["00"], "test": ["23"]}
UNK = "UNK"
SOURCE = "CCGbank 1.1 (LDC2005T13, local copy)"


def parse_auto(text: str, where: str) -> list[tuple[str, list[str], list[str]]]:
    """(sentence id, words, supertags) for each ``ID=`` header and derivation line of an AUTO file."""
    out, sentence_id = [], None
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("ID="):
            sentence_id = line.split()[0][3:]
            continue
        leaves = LEAF.findall(line)
        if sentence_id is None or not leaves:
            raise XstiltsError(f"{where} line {n} is not a CCGbank AUTO header or derivation; is it an .auto file?")
        out.append((sentence_id, [leaf[3] for leaf in leaves], [leaf[0] for leaf in leaves]))
        sentence_id = None
    return out


def auto_root(path: Path) -> Path:
    """The AUTO folder under a CCGbank path (``<path>/data/AUTO``, ``<path>/AUTO`` or ``<path>`` itself)."""
    for candidate in (path / "data" / "AUTO", path / "AUTO", path):
        if (candidate / "00").is_dir() or (candidate / "02").is_dir():
            return candidate
    raise XstiltsError(f"{path} holds no CCGbank AUTO sections (00-24); set data.ccg.path to your CCGbank folder.")


@register
class CcgTask(HubTask):
    """CCG supertagging on CCGbank (Hockenmaier & Steedman, 2007), read from a local copy (data.ccg.path): one supertag
    per word of the WSJ derivations; sections 02-21 train, 00 dev, 23 test; categories seen fewer than min_tag_count
    (10) times in train are UNK. CCGbank is LDC-licensed, so nothing is downloaded."""

    name, display, stands_for = "ccg", "CCG supertagging", "CCG supertagging (CCGbank)"
    family = Family.TAGGING
    role = Role.INTERMEDIATE
    domains = ("news",)  # the Wall Street Journal
    stand_in, stand_in_kind = "brown_pos", "English tagging"
    license = "LDC User Agreement (CCGbank, LDC2005T13): not redistributable"
    defaults = {"seed": splits.DEFAULT_SEED, "path": None, "min_tag_count": 10, **splits.SIZES}

    @property
    def labels(self) -> tuple[str, ...]:  # type: ignore[override]
        """The tag set written by prepare (``labels.json``); empty before the task is prepared."""
        path = prepared_dir(self.name) / "labels.json"
        return tuple(json.loads(path.read_text())) if path.is_file() else ()

    @classmethod
    def needs_hub(cls) -> str:
        return (
            "CCG supertagging needs CCGbank, which is LDC-licensed (LDC2005T13) and cannot be downloaded; set "
            f"data.ccg.path in params.yaml to your copy, or use the offline {cls.stand_in_kind} task `{cls.stand_in}`"
        )

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        s = splits.resolve_splits(self.name, params, self.defaults)
        p, sizes = s.params, s.sizes
        if not p["path"]:
            raise XstiltsError(f"{self.needs_hub()}.")
        path = Path(p["path"]).expanduser()
        if not path.exists():
            raise XstiltsError(f"{self.needs_hub()} (data.ccg.path {path} does not exist).")
        root = auto_root(path)
        rows: dict[str, list[dict[str, Any]]] = {}
        for split, sections in SECTIONS.items():
            rows[split] = []
            for section in sections:
                for file in sorted((root / section).glob("*.auto")):
                    for sentence_id, words, tags in parse_auto(file.read_text(encoding="utf-8"), str(file)):
                        rows[split].append(
                            {
                                "id": f"ccg-{sentence_id}",
                                "language": "en",
                                "domain": "wsj",
                                "source": SOURCE,
                                "split": split,
                                "tokens": words,
                                "tags": tags,
                            }  # fmt: skip
                        )
        if not rows["train"]:
            raise XstiltsError(f"{root} has no .auto files in sections 02-21; is data.ccg.path a CCGbank copy?")
        counts = Counter(tag for row in rows["train"] for tag in row["tags"])
        keep = {tag for tag, n in counts.items() if n >= int(p["min_tag_count"])}
        out = {}
        for split, split_rows in rows.items():
            position = {row["id"]: i for i, row in enumerate(split_rows)}
            chosen = sorted(position[k] for k in splits.take(position, sizes[split], s.seed))
            out[split] = [
                {**split_rows[i], "tags": [t if t in keep else UNK for t in split_rows[i]["tags"]]} for i in chosen
            ]
        written = splits.write_splits(Path(out_dir), self.schema, out)
        (Path(out_dir) / "labels.json").write_text(json.dumps(sorted(keep) + [UNK], indent=0) + "\n")
        return written

"""XTREME-R retrieval: Tatoeba and BUCC (Hub, google/xtreme), LAReQA and Mewsli-X (Google Research releases)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xstilts.data import google_releases as releases
from xstilts.data import splits
from xstilts.data.splits import SPLITS
from xstilts.tasks import xtreme_convert as conv
from xstilts.tasks.base import Family, HubTask, Role, prose, register
from xstilts.tasks.xtreme_hub import XTREME, Part, XtremeHubTask

# XTREME's 36 Tatoeba languages: ISO 639-1 -> the ISO 639-3 code in google/xtreme's config names. XTREME-R
# (google-research/xtreme scripts/run_tatoeba.sh) adds az, lt, pl, uk and ro, which google/xtreme lacks.
TATOEBA_CODES = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "es": "spa", "et": "est",
    "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin", "hu": "hun", "id": "ind",
    "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz", "ko": "kor", "ml": "mal", "mr": "mar",
    "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh", "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl",
    "tr": "tur", "ur": "urd", "vi": "vie", "zh": "cmn",
}  # fmt: skip
BUCC_LANGUAGES = ("de", "fr", "ru", "zh")  # google-research/xtreme scripts/run_bucc2018.sh
# Mewsli-X mention languages: MENTION_LANGUAGES in google-research/xtreme third_party/utils_mewslix.py.
MEWSLIX_LANGUAGES = ("ar", "de", "en", "es", "fa", "ja", "pl", "ro", "ta", "tr", "uk")


@register
class TatoebaTask(XtremeHubTask):
    """Tatoeba sentence retrieval as XTREME prepared it (google/xtreme, configs 'tatoeba.<iso639-3>', one validation
    split -> test): source_sentence -> text, its English target_sentence -> en_text. Ids 'tatoeba-<lang>-<position>'."""

    name, display, family, role = "tatoeba", "Tatoeba", Family.BITEXT, Role.RETRIEVAL
    stand_in, stand_in_kind = "udhr", "bitext retrieval (also libreoffice_help)"
    languages = tuple(TATOEBA_CODES)
    domain = "tatoeba"
    pin = XTREME
    license = "Tatoeba: CC BY 2.0 FR"

    def parts(self) -> list[Part]:
        return [("test", f"tatoeba.{code}", "validation", lang) for lang, code in TATOEBA_CODES.items()]

    def convert(self, dataset: Any, language: str, split: str, source: str) -> list[dict[str, Any]]:
        return conv.bitext(dataset, prefix="tatoeba", language=language, domain=self.domain, source=source, split=split)


@register
class BuccTask(XtremeHubTask):
    """BUCC 2018 parallel-sentence mining, de/fr/ru/zh with English (google/xtreme, configs 'bucc18.<lang>'): validation
    (BUCC's sample gold) -> dev, test (BUCC's training gold; its test gold is hidden) -> test. That copy holds only the
    gold pairs, so each corpus pair's pool is its gold sentences, without BUCC's unaligned distractors. Ids
    'bucc-<lang>-en-<BUCC sentence id>'; gold_id links a sentence to its English translation."""

    name, display, family, role = "bucc", "BUCC 2018", Family.MINING, Role.RETRIEVAL
    stand_in, stand_in_kind = "udhr", "bitext retrieval (also libreoffice_help)"
    languages = BUCC_LANGUAGES
    domain = "web"
    sized = False  # a subsample would cut gold links
    defaults = {"seed": splits.DEFAULT_SEED}
    pin = XTREME
    stands_for = "BUCC 2018 bitext mining (XTREME)"
    license = "BUCC 2018 shared task data (comparable.limsi.fr): research use, see the task page"

    def parts(self) -> list[Part]:
        pairs = (("dev", "validation"), ("test", "test"))
        return [(s, f"bucc18.{lang}", h, lang) for s, h in pairs for lang in self.languages]

    def convert(self, dataset: Any, language: str, split: str, source: str) -> list[dict[str, Any]]:
        return conv.bucc_pairs(
            dataset, prefix="bucc", language=language, domain=self.domain, source=source, split=split
        )


class _ReleaseTask(HubTask):
    """A task from a Google Research release: no Hub, no offline stand-in."""

    family, role = Family.RANKING, Role.RETRIEVAL
    stand_in, stand_in_kind = "", "ranking task (none)"

    @classmethod
    def needs_hub(cls) -> str:
        return f"{cls.display} needs Google Research's release online; there is no offline stand-in"


@register
class LareqaTask(_ReleaseTask):
    """LAReQA XQuAD-R: 1,190 questions x 11 languages ranked against every sentence of the XQuAD paragraphs in all 11
    languages; a question's relevant candidates are its answer sentence in each language (mAP@20 in XTREME-R). From
    {source} (xquad-r/<lang>.json). Test only; XTREME-R's retrieval fine-tuning on SQuAD v1.1 sentences is not built
    here."""

    name, display = "lareqa", "LAReQA (XQuAD-R)"
    languages = releases.LAREQA_LANGUAGES
    stands_for = "LAReQA XQuAD-R (XTREME-R)"
    license = "XQuAD-R: CC BY-SA 4.0"
    description = prose(__doc__).format(source=releases.LAREQA_SOURCE)

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        splits.resolve_params(self.name, params, {"seed": splits.DEFAULT_SEED})
        docs = releases.load_lareqa(Path(raw_dir), self.languages)
        rows = conv.lareqa(docs, prefix="lareqa", domain="wikipedia", source=releases.LAREQA_SOURCE, split="test")
        return splits.write_splits(Path(out_dir), self.schema, {"test": rows})


@register
class MewslixTask(_ReleaseTask):
    """Mewsli-X: link an entity mention to its WikiData entity by retrieving the entity's description. train/dev:
    English Wikipedia mention-entity pairs, each split's pool its gold entities; test: WikiNews mentions in 11
    languages against the 1,003,893-entity candidate set. From {source} (md5-checked) after Google's get-mewsli-x.sh
    restored the WikiNews text; the files are read from data/raw/google/mewsli-x/."""

    name, display = "mewslix", "Mewsli-X"
    languages = MEWSLIX_LANGUAGES
    stands_for = "Mewsli-X entity retrieval (XTREME-R)"
    license = "Mewsli-X: CC BY 4.0 (WikiNews text CC BY 2.5, Wikipedia CC BY-SA 3.0)"
    description = prose(__doc__).format(source=releases.MEWSLIX_SOURCE)

    def prepare(self, raw_dir: Path, out_dir: Path, params: dict[str, Any]) -> dict[str, int]:
        splits.resolve_params(self.name, params, {"seed": splits.DEFAULT_SEED})
        folder = releases.mewslix_dir(Path(raw_dir))
        source, rows = releases.MEWSLIX_SOURCE, {s: [] for s in SPLITS}
        for split, name in (("train", "wikipedia_pairs-train"), ("dev", "wikipedia_pairs-dev")):
            records = releases.read_jsonl(folder / f"{name}.jsonl")
            queries, entities = conv.mewslix_pairs(
                records, prefix="mewslix", domain="wikipedia", source=source, split=split
            )
            rows[split] = queries + entities
        mentions = releases.read_jsonl(folder / "wikinews_mentions-test.jsonl")
        rows["test"] = conv.mewslix_mentions(mentions, prefix="mewslix", domain="news", source=source, split="test")
        rows["test"] += [
            conv.mewslix_entity(e, prefix="mewslix", source=source, split="test")
            for e in releases.read_jsonl(folder / "candidate_set_entities.jsonl")
        ]
        return splits.write_splits(Path(out_dir), self.schema, rows)

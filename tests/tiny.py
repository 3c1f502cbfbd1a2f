"""A tiny randomly initialised encoder + tokenizer, built in a second for tests (no downloads)."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]

CORPUS = [
    "the hotel was clean and the staff were friendly",
    "the room was dirty and the service was terrible",
    "the doctor explained everything , very good care",
    "i waited three hours and nobody helped me",
    "the product arrived broken",
    "it works fine , nothing special",
    "claim : the film earned more than ten million",
    "evidence : the film earned twelve million dollars worldwide",
    "das hotel war sauber und das personal freundlich",
    "pokój był brudny a obsługa okropna",
    "le produit est arrivé cassé",
    "все люди рождаются свободными",
    "人人生而自由",
]


def build_tiny_encoder(out_dir: Path, seed: int = 0) -> Path:
    """Write a 2-layer, hidden-32 BERT and a word-level tokenizer (XLM-R special tokens) to ``out_dir``."""
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    tok.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[(t, tok.token_to_id(t)) for t in ("<s>", "</s>")],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=128,
    )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=1,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(out_dir)
    fast.save_pretrained(out_dir)
    return out_dir


def mean_pooled(encoder_dir: Path, texts: list[str], max_length: int = 32):
    """Unit-length mean-pooled last-layer vectors of ``texts`` (numpy), computed with plain transformers: an
    independent check of xstilts' retrieval embeddings."""
    import numpy as np
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(encoder_dir), AutoModel.from_pretrained(encoder_dir)
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    v = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    return v / np.linalg.norm(v, axis=1, keepdims=True)

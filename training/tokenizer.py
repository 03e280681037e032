"""A CLIP tokenizer for the shapes world: byte-level BPE trained with the `tokenizers` library.

It uses CLIP's conventions (lower case, words split as CLIP splits them, the end-of-word suffix
`</w>`, `<|startoftext|>` / `<|endoftext|>`), so transformers' `CLIPTokenizer` loads the
vocab.json + merges.txt it writes. Every caption word becomes one token; unknown words are spelled
out in bytes, as CLIP does.
"""

import json
import random
import tempfile
from pathlib import Path

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import CLIPTokenizer

from kandinsky_lab import world
from kandinsky_lab.tiny import _byte_chars

CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
SPECIALS = ["<|startoftext|>", "<|endoftext|>"]


def captions(count: int = 20_000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [world.caption(world.sample(rng), rng) for _ in range(count)]


def save_vocab(tokenizer: CLIPTokenizer, folder: Path) -> None:
    """Write vocab.json and merges.txt beside tokenizer.json, for transformers 4.x's slow CLIPTokenizer."""
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (folder / "vocab.json").write_text(json.dumps(model["vocab"]))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def build(model_max_length: int, vocab_size: int = 1024) -> CLIPTokenizer:
    """Train BPE on world captions and load it into transformers' CLIPTokenizer."""
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.normalizer = normalizers.Lowercase()
    bpe.pre_tokenizer = pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="isolated")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=_byte_chars(),
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    bpe.train_from_iterator(captions(), trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    # The trainer numbers its initial alphabet in hash-map order, which changes from process to
    # process; number it in sorted order (then the merges, in their fixed order) so that a seeded
    # run gives the same token ids, and so the same weights, every time.
    merged = ["".join(m.split(" ")) for m in merges]
    alphabet = sorted(set(model["vocab"]) - set(SPECIALS) - set(merged))
    vocab = {token: i for i, token in enumerate(dict.fromkeys([*SPECIALS, *alphabet, *merged]))}
    for char in _byte_chars():  # CLIP spells unknown words in bytes, word-final ones with </w>
        for token in (char, char + "</w>"):
            vocab.setdefault(token, len(vocab))
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "vocab.json").write_text(json.dumps(vocab))
        (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": model_max_length}))
        return CLIPTokenizer.from_pretrained(folder)

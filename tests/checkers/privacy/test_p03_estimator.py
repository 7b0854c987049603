"""FMFL-P03's fast paths give what the slow ones give.

- shared-prefix (trie + KV cache) scoring equals whole-sequence scoring, and falls back to it
  when a model's cache cannot be used or gives other numbers;
- composed candidate token ids equal the tokenizer's, and composition is refused for a
  tokenizer that merges digits;
- the auto method keeps the skew-normal estimate only where it agrees with exact enumeration.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.checkers.privacy.conftest import audit
from tests.conftest import minimal_manifest, write_jsonl, write_manifest

from fmfl_audit.checkers.privacy._canary_ids import CandidateIds
from fmfl_audit.checkers.privacy._lm_scoring import (
    LoadedModel,
    candidate_nll,
    causal_nll,
    encode,
)
from fmfl_audit.checkers.privacy.canary import CanaryParams, _Estimate, parse_canary


@pytest.fixture(scope="module")
def lm(shared_data: Path) -> LoadedModel:
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)
    path = shared_data / "stories260K"
    tok = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
    return LoadedModel(model=model.eval(), tokenizer=tok, device="cpu", kind="causal-lm")


def _candidates(lm: LoadedModel) -> list[list[int]]:
    rng = random.Random(0)
    texts = [f"my student code is {rng.randrange(10**4):04d}" for _ in range(300)]
    # Different lengths, a candidate that is a prefix of others, a duplicate.
    texts += ["my door is red", "my door is blue", "my door is green and old", "my door"]
    texts += ["my door is red"]
    return encode(lm, texts, max_length=64)


@pytest.mark.slow
def test_trie_scoring_equals_whole_sequences(lm: LoadedModel) -> None:
    ids = _candidates(lm)
    whole, _ = causal_nll(lm, ids, batch_size=64)
    got, info = candidate_nll(lm, ids, batch_size=64, max_batch_tokens=256)
    assert info.kv_cache is True and info.candidates == len(ids)
    assert np.abs(got - whole).max() < 1e-3
    # Each distinct prefix runs once: far fewer positions than scoring each candidate whole.
    assert info.positions < info.naive_positions / 3
    assert got[-1] == got[-5]  # the duplicate


class _DroppedCache:
    """A model whose forward ignores the cache it is given (so cached steps lose context)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.forward = model.forward

    def __call__(self, **kwargs: Any) -> Any:
        kwargs.pop("cache", None)
        kwargs.pop("past_key_values", None)
        return self.model(**kwargs)


class _NoCache(_DroppedCache):
    """A model that returns no cache at all."""

    def __call__(self, **kwargs: Any) -> Any:
        kwargs["use_cache"] = False
        return super().__call__(**kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("wrapper", [_DroppedCache, _NoCache])
def test_trie_scoring_falls_back_when_the_cache_misbehaves(lm: LoadedModel, wrapper: Any) -> None:
    ids = _candidates(lm)[:40]
    whole, _ = causal_nll(lm, ids, batch_size=64)
    broken = LoadedModel(wrapper(lm.model), lm.tokenizer, lm.device, lm.kind)
    got, info = candidate_nll(broken, ids, batch_size=64)
    assert info.kv_cache is False and info.positions == info.naive_positions
    assert np.abs(got - whole).max() < 1e-4


def _random_fills(canary: Any, n: int) -> list[tuple[str, ...]]:
    rng = np.random.default_rng(1)
    return [canary.secret] + [tuple(s.pick(rng) for s in canary.slots) for _ in range(n)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fmt", "secret", "composed"),
    [
        ("my library pin is {digits:5}", "48337", True),
        ("{choice:red|blue|green} door, code {digits:4} now", ["blue", "0917"], True),
        # stories260K merges letters into BPE pieces: composition must be refused.
        ("the secret word is {letters:4}", "qzxw", False),
    ],
)
def test_composed_ids_equal_the_tokenizer(
    lm: LoadedModel, fmt: str, secret: Any, composed: bool
) -> None:
    canary = parse_canary({"format": fmt, "secret": secret}, "c.jsonl:1", 1)
    ids = CandidateIds(lm, canary, max_length=64)
    assert ids.composed is composed
    fills = _random_fills(canary, 300)
    expected = encode(lm, [canary.render(f) for f in fills], max_length=64)
    assert [list(map(int, row)) for row in ids.of(fills)] == expected
    if composed:
        every, truth = ids.every()
        assert len(every) == canary.space
        assert list(map(int, every[truth])) == expected[0]


def _digit_merging_tokenizer() -> Any:
    """A GPT-2-style byte-level BPE tokenizer trained here on digit runs: it merges digits."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    rng = random.Random(0)
    corpus = [f"my pin is {rng.randrange(10**5):05d}" for _ in range(2000)]
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def test_composition_refused_for_a_tokenizer_that_merges_digits() -> None:
    tok = _digit_merging_tokenizer()
    lm = LoadedModel(model=None, tokenizer=tok, device="cpu", kind="causal-lm")
    canary = parse_canary({"format": "my pin is {digits:5}", "secret": "48337"}, "c", 1)
    assert len(tok("my pin is 48337")["input_ids"]) < len("my pin is 48337") // 2
    ids = CandidateIds(lm, canary, max_length=64)
    assert ids.composed is False
    fills = _random_fills(canary, 200)
    expected = encode(lm, [canary.render(f) for f in fills], max_length=64)
    assert [list(map(int, row)) for row in ids.of(fills)] == expected


def _scoring() -> Any:
    from fmfl_audit.checkers.privacy._lm_scoring import CandidateScoring

    return CandidateScoring(1, 1, 1, True)


@pytest.mark.parametrize(
    ("x", "reason"),
    [
        (0.0, None),  # the middle of the sample: 2,500 of 5,000 below
        (-2.0, None),  # 2.3% below: ~114 sampled candidates, the fit is checked against them
        (-3.6, "beyond the sample"),  # 0.016% below: the fit would be extrapolated
    ],
)
def test_estimate_stands_only_inside_the_sample(x: float, reason: str | None) -> None:
    xs = np.random.default_rng(0).normal(size=5000)
    canary = parse_canary({"format": "{digits:6}", "secret": "000000"}, "c", 1)
    est = _Estimate.fit(CanaryParams(), canary, x, xs, _scoring())
    if reason is None:
        assert est.reason is None
        empirical = -math.log2(np.mean(xs < x))
        assert abs(est.exposure - empirical) < 0.2
    else:
        assert est.reason is not None and reason in est.reason
    assert est.below == int(np.sum(xs < x)) and 0 < est.ks < 0.05


def _deploy_canary(tmp: Path, checkpoint: Path, canary: dict[str, Any], params: Any) -> Path:
    write_jsonl(tmp / "canaries.jsonl", [canary])
    spec = {
        "name": "global-lm",
        "kind": "causal-lm",
        "checkpoint": str(checkpoint),
        "canaries": "canaries.jsonl",
    }
    manifest = minimal_manifest(models=[spec])
    manifest["policy"] = {"rules": {"FMFL-P03": {"params": params}}}
    return write_manifest(tmp, manifest)


def _p03(tmp: Path, checkpoint: Path, params: dict[str, Any]) -> dict[str, Any]:
    canary = {"id": "c1", "format": "my student code is {digits:3}", "secret": "472"}
    rep = audit(_deploy_canary(tmp, checkpoint, canary, params), "FMFL-P03")
    return rep.rule("FMFL-P03").metrics["model:global-lm"]["canaries"]["c1"]  # type: ignore[no-any-return]


@pytest.mark.slow
def test_auto_uses_the_estimate_only_where_it_agrees_with_exact(
    lm_setup: dict[str, Any], tmp_path: Path
) -> None:
    # 1,000 candidates and a 200-candidate sample (of which 20 form the pilot), so that both
    # paths run on a small space and exact enumeration is there to compare with.
    auto = {"samples": 200}
    for name in ("base", "many"):
        exact = _p03(tmp_path / name / "exact", lm_setup[name], {"method": "exact"})
        got = _p03(tmp_path / name / "auto", lm_setup[name], auto)
        assert exact["method"] == "exact" and exact["scored"] == 1000
        if name == "base":
            # Not exposed: the canary sits inside the sample; the estimate stands and agrees
            # with exact enumeration within the 0.5 bits the fit was checked to.
            assert got["method"] == "sampled-skewnorm" and got["scored"] == 200
            assert got["fit"]["extrapolated"] is False and got["sample_rank"] > 25
            assert abs(got["exposure_bits"] - exact["exposure_bits"]) < 0.5
        else:
            # Exposed: beyond the sample, where the fit would be extrapolated: enumerated.
            assert got["method"] == "exact" and got["why"].startswith("estimate rejected")
            assert got["exposure_bits"] == exact["exposure_bits"]
        assert got["scoring"]["kv_cache"] is True

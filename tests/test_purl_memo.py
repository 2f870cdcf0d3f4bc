"""The cross-episode prefix memo of PuRLEnv: the same numbers bit for bit, less work."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_purl_env import data_for, seq_net

from pruning_core.bench import favourite_action_sequences
from pruning_core.models.cnn import build_resnet20
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.rl.envs.purl_memo import PrefixMemo

pytestmark = pytest.mark.usefixtures("one_thread")


def _episodes(env: PuRLEnv, seqs: list[list[int]]) -> list[list[tuple]]:
    out = []
    for s in seqs:
        obs, info = env.reset(seed=0)
        steps = [(obs, None, info["accuracy"], info["sparsity"])]
        for a in s:
            obs, r, term, trunc, info = env.step(a)
            steps.append((obs, r, info["accuracy"], info["sparsity"], term, trunc))
        out.append(steps)
    return out


def _same(a: list[list[tuple]], b: list[list[tuple]]) -> None:
    assert len(a) == len(b)
    for ea, eb in zip(a, b, strict=True):
        for sa, sb in zip(ea, eb, strict=True):
            assert np.array_equal(sa[0], sb[0])  # observation, bit for bit
            assert sa[1:] == sb[1:]  # reward, accuracy, sparsity, flags: equal floats


@pytest.mark.parametrize("config", [
    PuRLConfig(target_sparsity=0.8),
    PuRLConfig(target_sparsity=0.5, action_space="ratio", passes=2),
    PuRLConfig(target_sparsity=0.8, reward_mode="episodic", prefix_cache=False),
], ids=["alpha", "ratio-two-passes", "episodic-no-prefix-cache"])  # fmt: skip
def test_memo_gives_the_same_episodes_bit_for_bit(config: PuRLConfig) -> None:
    model = seq_net()
    data = data_for(model)
    plain = PuRLEnv(model, data, config, memo_mb=0)
    memo = PuRLEnv(model, data, config)
    n = len(plain.action_values)
    seqs = favourite_action_sequences(30, plain.episode_length, n, 0.9, seed=3)
    _same(_episodes(plain, seqs), _episodes(memo, seqs))
    assert plain.memo is None and memo.memo is not None
    assert memo.memo.hits > 0  # a converging policy's prefixes were looked up
    # and the model is the pruned network the last observation describes
    assert memo.layer_sparsity() == plain.layer_sparsity()
    for (_, p), (_, q) in zip(plain.model.state_dict().items(), memo.model.state_dict().items(),
                              strict=True):  # fmt: skip
        assert torch.equal(p, q)


def test_memo_on_resnet20_skips_the_forward_passes_of_known_prefixes() -> None:
    torch.manual_seed(0)
    model = build_resnet20(10, 1, 4).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 1, 14, 14, generator=g)
    with torch.inference_mode():
        y = model(x).argmax(1)
    cfg = PuRLConfig(target_accuracy=1.0)
    plain, memo = PuRLEnv(model, (x, y), cfg, memo_mb=0), PuRLEnv(model, (x, y), cfg)
    seqs = favourite_action_sequences(8, plain.episode_length, 23, 0.98, seed=0)
    _same(_episodes(plain, seqs), _episodes(memo, seqs))
    distinct = len({tuple(s[:t]) for s in seqs for t in range(1, len(s) + 1)})
    assert memo.memo.misses == distinct  # each prefix computed once, every repeat looked up
    assert memo.cache.stages_run < plain.cache.stages_run


def test_memo_is_bounded_in_bytes_least_recently_used_first() -> None:
    inputs = [torch.zeros(4)]
    memo = PrefixMemo(max_bytes=3 * 16, inputs=inputs)  # three entries of 4 float32
    for k in range(5):
        memo.put((k,), 0.5, 1, [torch.zeros(4)])
    assert len(memo) == 3 and memo.nbytes == 48
    assert memo.get((0,)) is None and memo.get((1,)) is None and memo.get((4,)) is not None
    memo.get((2,))  # now the most recent
    memo.put((5,), 0.5, 1, [torch.zeros(4)])
    assert memo.get((3,)) is None and memo.get((2,)) is not None
    memo.put((9,), 0.1, 0, inputs)  # the inputs themselves cost nothing
    assert memo.nbytes == 48 and memo.get((9,)).accuracy == 0.1


def test_memo_rejects_a_bad_size_and_is_off_with_finetuning() -> None:
    model = seq_net()
    data = data_for(model)
    with pytest.raises(ValueError, match="memo_mb"):
        PuRLEnv(model, data, memo_mb=-1)
    env = PuRLEnv(model, data, PuRLConfig(finetune_steps=1), train_data=data)
    assert env.memo is None


def test_bench_reports_the_memo_against_the_limit_of_prefix_reuse() -> None:
    from pruning_core.bench import measure_purl_memo

    model = seq_net()
    x, y = data_for(model)
    out = measure_purl_memo(model, x, y, episodes=6, search_episodes=3)
    assert set(out) >= {"random", "p0.9", "p0.95", "p0.98", "search"}
    for case in ("random", "p0.98", "search"):
        r = out[case]
        assert r["limit"] >= 1 and r["share_of_limit"] == pytest.approx(r["ratio"] / r["limit"])
    assert out["p0.98"]["limit"] > out["random"]["limit"]  # a converged policy repeats itself
    assert out["search"]["episodes"] == 3

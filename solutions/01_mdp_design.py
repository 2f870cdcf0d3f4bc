"""Worked solution of notebook 01's exercises 1 and 4, runnable at any profile.

Run it from the repository root: ``PROFILE=smoke python solutions/01_mdp_design.py`` (seconds) or
``PROFILE=cpu`` (minutes, the notebook's sizes). It trains the same DQN as the notebook with the
per-step reward and with the end-of-episode reward (exercise 1), then prunes the network with the
per-step arm's greedy policy and fine-tunes it with the masks held (exercise 4), and prints what it measured.
The expected answers, and why, are in ``solutions/01_mdp_design.md``.
"""

from __future__ import annotations

import os

import pandas as pd
import torch

from pruning_core.rl.agents.dqn import greedy_policy, train
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.rl.rollout import replay, rollout
from pruning_core.studies.mdp_design import dense_digits_cnn, mdp_design_sizes
from pruning_core.train.loop import TrainConfig, evaluate, fit


def main(profile: str) -> pd.DataFrame:
    """Exercise 1 (reward timing) on the notebook's first seed, then exercise 4 (fine-tuning)."""
    torch.set_num_threads(1)
    sizes = mdp_design_sizes(profile)
    dense = dense_digits_cnn(sizes)  # cached: the notebook's own dense network
    reward_split, test = dense.splits.tensors("reward"), dense.splits.tensors("test")
    seed = sizes.seeds[0]
    rows, envs, agents = [], {}, {}
    for mode in ("step", "episodic"):
        env = envs[mode] = PuRLEnv(
            dense.model, reward_split,
            PuRLConfig(target_sparsity=sizes.target_sparsity, reward_mode=mode),
        )
        agent = agents[mode] = train(env, sizes.dqn_config(seed), desc=f"DQN, reward_mode={mode}")
        greedy = greedy_policy(agent, env)
        rows.append({"reward_mode": mode, "greedy_return": greedy.episode_return,
                     "actions": greedy.actions, "sparsity": greedy.sparsity,
                     "reward_accuracy": greedy.accuracy})
    # The two arms' returns are on different scales (one reward at the end vs one per layer):
    # re-score both deployed policies with the per-step reward.
    yardstick = PuRLEnv(dense.model, reward_split, PuRLConfig(target_sparsity=sizes.target_sparsity))
    for row in rows:
        row["per_step_return"] = rollout(yardstick, replay(row.pop("actions"))).episode_return
    yardstick.reset()
    env = envs["step"]
    greedy_policy(agents["step"], env)  # leaves env.model pruned, its masks in env.masker
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))

    # Exercise 4: fine-tune the per-step arm's pruned network with its masks held.
    before = evaluate(env.model, test)["top1"]
    fit(env.model, dense.splits.tensors("train"), TrainConfig(epochs=3, seed=seed),
        masker=env.masker)
    after = evaluate(env.model, test)["top1"]
    sparsity = env.masker.sparsity()
    print(f"exercise 4: test top-1 {before:.4f} pruned -> {after:.4f} after 3 epochs with the masks "
          f"held (sparsity {sparsity:.3f}); dense {evaluate(dense.model, test)['top1']:.4f}")
    return table.assign(test_before_finetune=before, test_after_finetune=after)


if __name__ == "__main__":
    main(os.environ.get("PROFILE", "smoke"))

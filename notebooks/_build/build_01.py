"""Generate notebooks/01_mdp_design.ipynb (without outputs) from the cells below.

Run from the repository root: ``.venv/bin/python notebooks/_build/build_01.py``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from common import build_notebook

OUT = Path(__file__).resolve().parent.parent / "01_mdp_design.ipynb"

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """# 01 · The PuRL pruning MDP, piece by piece

**What this notebook shows.** PuRL (Gupta et al., 2020) prunes a trained network with a deep
Q-network: one step prunes one layer (unstructured magnitude pruning), an episode is one pass
over the layers, and the agent is rewarded **after every step**, not only at the end. Here we take
that MDP apart: the state features the agent sees (on ResNet-50's 54 prunable layers), how an
action `alpha` turns into a layer's sparsity, the shape of the reward, and finally a full DQN run
on a small CNN trained on real data (scikit-learn's handwritten digits), compared with a random
policy over the same number of episodes and the same seeds.

**Why.** Notebooks 02 and 03 spend their compute on ResNet-50 and MobileNet-V2 searches. Before
that, each design choice should be checked on its own: features bounded and informative, actions
that map to predictable sparsities, a reward that really trades accuracy against sparsity, and an
agent that learns something a random policy does not find.

Everything the figures show is written to `results/<profile>/01_mdp_design/` first (CSV tables,
`summary.json`) and read back from there.""",
    ),
    ("params", 'PROFILE = "cpu"'),
    (
        "md",
        """All sizes come from the profile in code (`mdp_design_sizes`), so a papermill
`-p PROFILE smoke` run never mixes values of two profiles. The run folder records the sizes,
the git commit and the package versions.""",
    ),
    (
        "code",
        """import numpy as np
import pandas as pd
import torch

from pruning_core import plots
from pruning_core.agents.dqn import greedy_policy, random_policy, train
from pruning_core.config import cache_root
from pruning_core.envs.purl import (
    DEFAULT_ALPHAS,
    FEATURE_NAMES,
    PuRLConfig,
    PuRLEnv,
    alpha_sparsity_table,
    dense_digits_cnn,
    feature_table,
    layer_descriptors,
    mdp_design_sizes,
)
from pruning_core.masking import prunable_layers
from pruning_core.models import build_resnet50, describe_adaptation
from pruning_core.results import RunDir, config_hash
from pruning_core.rewards import purl_reward_grid
from pruning_core.train import evaluate

# The networks here are small: one thread is faster than two and steady on a shared machine.
torch.set_num_threads(1)
sizes = mdp_design_sizes(PROFILE)
run = RunDir("01_mdp_design", PROFILE, config=sizes)
sizes""",
    ),
    (
        "md",
        """## 1 · The state: what the agent knows about a layer

At each step the agent sees one vector of features, all scaled into [0, 1] (the accuracy ratio
into [0, 2]). Some describe the layer and never change during an episode: its position, its type
(conv / depthwise / linear), channels, kernel size, stride, its share of all prunable weights and
of the weights still to come, and statistics of its dense weights (std relative to the largest
layer's, mean |w| / rms, kurtosis mapped to k/(k+3)). The others change as the episode goes:
the layer's own sparsity so far (nonzero on later passes only), the network's sparsity so far,
the accuracy so far relative to the dense network, and the previous action.

We build torchvision's ResNet-50 with the small-input stem, **untrained**: the layer descriptors
are architectural and exact, but the weight statistics are those of the initialisation as built
(Kaiming-normal convs, a uniformly initialised fc), not of a trained network.""",
    ),
    (
        "code",
        """torch.manual_seed(0)
resnet = build_resnet50(num_classes=10, small_input=True)
example = torch.zeros(sizes.feature_images, 3, 8, 8)  # only to record the forward order
r50_layers = prunable_layers(resnet, example_input=example)
run.write_table("resnet50_layer_features", feature_table(layer_descriptors(r50_layers)))
print(describe_adaptation("resnet50"))
print(f"{len(r50_layers)} prunable layers")""",
    ),
    (
        "md",
        """Each column of the heatmap is one layer in forward order, each row one static feature. The
bottleneck pattern (1x1 reduce, 3x3, 1x1 expand) repeats; the strided 3x3 convs and 1x1
downsampling convs that open layer2, layer3 and layer4 stand out in `stride`, the fc layer in
`is_linear`, and the 3x3 convs of layer4 hold the largest shares of the weights.""",
    ),
    (
        "code",
        """features_df = pd.read_csv(run.file("resnet50_layer_features.csv"))
static_cols = [f"f_{n}" for n in FEATURE_NAMES if f"f_{n}" in features_df]
fig = plots.feature_heatmap(
    features_df, static_cols, title="ResNet-50 (small input, untrained): static state features"
)
run.save_fig(fig, "resnet50_state_features")
features_df[["layer", "type", "in_channels", "out_channels", "kernel_size", "stride", "params"]].head(8)""",
    ),
    (
        "md",
        """## 2 · The action: from alpha to a layer's sparsity

PuRL's action is one of 23 thresholds `alpha in {0.0, 0.1, ..., 2.2}`: the layer loses every
weight with `|w| < alpha * std(w)` (std of the dense layer). For weights that look Gaussian with
mean 0, the pruned share is `erf(alpha / sqrt 2)`: 0.38 at alpha = 0.5, 0.68 at 1.0, 0.95 at 2.0
and 0.97 at 2.2. We measure it on every ResNet-50 layer and compare.""",
    ),
    (
        "code",
        """run.write_table("resnet50_alpha_sparsity", alpha_sparsity_table(r50_layers, DEFAULT_ALPHAS))
alpha_df = pd.read_csv(run.file("resnet50_alpha_sparsity.csv"))
fig = plots.alpha_sparsity(alpha_df, title="ResNet-50 (as built): sparsity of each layer vs alpha")
run.save_fig(fig, "resnet50_alpha_sparsity")
deviation = (
    alpha_df.assign(abs_error=(alpha_df["sparsity"] - alpha_df["gaussian"]).abs())
    .groupby("type", as_index=False)
    .agg(layers=("layer", "nunique"), max_abs_error=("abs_error", "max"))
)
run.write_table("alpha_gaussian_deviation", deviation)
deviation""",
    ),
    (
        "md",
        """The Kaiming-normal convs follow the Gaussian curve closely; the fc layer, initialised
uniformly, follows `alpha / sqrt 3` instead and is fully pruned from alpha = 1.8 on. Trained
layers drift from the Gaussian shape as well (the example episode in section 3 prunes the trained
small CNN's layers by different shares at the same alpha). The agent therefore cannot read an
alpha as a fixed sparsity; the weight-statistics features are what lets it tell layers apart.

## 3 · A trained network to prune

The DQN needs a network whose accuracy actually suffers from pruning: a small CNN (three convs,
two linear layers, about 23k weights) trained densely on 8x8 digits. It is cached under
`cache_root()`, keyed by a hash of its config. The three splits are disjoint: train (dense
training), validation (the reward; the agent never sees test data) and test (reported only).""",
    ),
    (
        "code",
        """dense = dense_digits_cnn(sizes)
splits = dense.splits
val = (splits.x_val, splits.y_val)
dense_val = evaluate(dense.model, val)["top1"]
dense_test = evaluate(dense.model, (splits.x_test, splits.y_test))["top1"]
env = PuRLEnv(dense.model, val, PuRLConfig(target_sparsity=sizes.target_sparsity))
print(f"train / val / test: {len(splits.x_train)} / {len(splits.x_val)} / {len(splits.x_test)} images")
print(f"dense accuracy: val {dense_val:.4f}, test {dense_test:.4f}; A* = {env.target_accuracy:.4f}")
print(f"prefix cache: {env.prefix_cache_enabled}; features: {len(env.feature_names)}")
env.layer_table()[["layer", "type", "params", "f_param_share"]]""",
    ),
    (
        "md",
        """One episode by hand, with alpha = 1.0 at every layer, shows the per-step reward at work.
Early steps are penalised for the sparsity shortfall whatever the agent does (the first conv
holds 2% of the weights), so the return rewards reaching the target *early*: pruning the large
layers hard, without losing accuracy.""",
    ),
    (
        "code",
        """obs, info = env.reset(seed=0)
rows, done = [], False
while not done:
    obs, reward, done, _, info = env.step(DEFAULT_ALPHAS.index(1.0))
    rows.append(
        {
            "layer": info["layer"],
            "alpha": info["action_value"],
            "layer_sparsity": info["layer_sparsity"][info["layer"]],
            "sparsity": info["sparsity"],
            "accuracy": info["accuracy"],
            "reward": reward,
        }
    )
run.write_table("example_episode_alpha_1", pd.DataFrame(rows))
pd.read_csv(run.file("example_episode_alpha_1.csv"))""",
    ),
    (
        "md",
        """## 4 · The reward surface

`R = -beta * (max((A* - A)/A*, 0) + max((S* - S)/S*, 0))` with beta = 5: zero once both the
accuracy target `A*` (here the dense validation accuracy) and the sparsity target `S*` are met,
and linear in each relative shortfall. One percent of accuracy lost costs as much as missing
one percent of the target sparsity, so the agent is pushed towards the corner `(S*, A*)` and
nothing rewards going beyond it.""",
    ),
    (
        "code",
        """grid = purl_reward_grid(
    accuracies=np.linspace(0.5, 1.0, 51),
    sparsities=np.linspace(0.0, 1.0, 51),
    target_accuracy=env.target_accuracy,
    target_sparsity=sizes.target_sparsity,
)
run.write_table("reward_surface", grid, markdown=False)
surface = pd.read_csv(run.file("reward_surface.csv"))
fig = plots.reward_surface(
    surface, env.target_accuracy, sizes.target_sparsity, title="PuRL reward (beta = 5)"
)
run.save_fig(fig, "reward_surface")""",
    ),
    (
        "md",
        """## 5 · DQN against a random policy

For each seed, a DQN (experience replay, target network, Double-DQN target, Huber loss,
epsilon decaying linearly over the first half of the steps) trains for `sizes.episodes`
episodes; the random policy then plays the same number of episodes with the same seed. The
DQN checkpoints into the cache, so an interrupted run resumes exactly where it stopped. After
training, the greedy policy plays one episode: its return is the DQN's final return, and the
network it leaves behind is evaluated on the test split (no fine-tuning).""",
    ),
    (
        "code",
        """ckpt_dir = cache_root() / "01_mdp_design" / config_hash(
    {"sizes": sizes, "env": env.config, "dense": dense.path.name}
)
greedy_rows, layer_rows = [], []
share = dict(zip(env.layer_names, env.layer_table()["f_param_share"], strict=True))
for seed in sizes.seeds:
    agent = train(
        env,
        sizes.dqn_config(seed),
        log_path=run.file(f"logs/dqn_seed{seed}.csv"),
        checkpoint_path=ckpt_dir / f"dqn_seed{seed}.pt",
        desc=f"DQN seed {seed}",
    )
    random_policy(
        env, sizes.episodes, seed=seed, log_path=run.file(f"logs/random_seed{seed}.csv"),
        desc=f"random seed {seed}",
    )
    rollout = greedy_policy(agent, env)  # leaves the network pruned by the greedy policy
    test_top1 = evaluate(env.model, (splits.x_test, splits.y_test))["top1"]
    greedy_rows.append(
        {
            "seed": seed,
            "return": rollout.episode_return,
            "sparsity": rollout.sparsity,
            "val_accuracy": rollout.accuracy,
            "test_accuracy_no_finetune": test_top1,
            "alphas": " ".join(f"{a:.1f}" for a in rollout.action_values),
        }
    )
    layers = rollout.table().assign(seed=seed)
    layer_rows.append(layers.assign(param_share=layers["layer"].map(share)))
env.reset()  # dense weights back
run.write_table("greedy_policy", pd.DataFrame(greedy_rows))
run.write_table("greedy_layers", pd.concat(layer_rows, ignore_index=True))
pd.read_csv(run.file("greedy_policy.csv"))""",
    ),
    (
        "md",
        """The curves are rolling means of the episode return, averaged over seeds, with a band of one
standard deviation across seeds. The DQN's training curve includes its exploration
(epsilon-greedy); the dashed line is the greedy policy after training.""",
    ),
    (
        "code",
        """def read_logs(kind: str) -> pd.DataFrame:
    return pd.concat(
        [
            pd.read_csv(run.file(f"logs/{kind}_seed{s}.csv")).assign(seed=s)
            for s in sizes.seeds
        ],
        ignore_index=True,
    )


dqn_logs, random_logs = read_logs("dqn"), read_logs("random")
greedy = pd.read_csv(run.file("greedy_policy.csv"))
window = max(5, sizes.episodes // 20)
fig = plots.learning_curves(
    dqn_logs, random_logs, greedy, window=window,
    title=f"PuRL on a small CNN (digits), S* = {sizes.target_sparsity}",
)
run.save_fig(fig, "learning_curves")

random_per_seed = random_logs.groupby("seed")["return"].mean()
tail = dqn_logs[dqn_logs["episode"] > 0.9 * sizes.episodes].groupby("seed")["return"].mean()
dqn_final, random_return = greedy["return"].mean(), random_per_seed.mean()
margin = dqn_final - random_return
random_episode_std = random_logs["return"].std()
summary = run.summary(
    seeds=list(sizes.seeds),
    episodes=sizes.episodes,
    target_sparsity=sizes.target_sparsity,
    target_accuracy=env.target_accuracy,
    dense_val_accuracy=dense_val,
    dense_test_accuracy=dense_test,
    dqn_final_return=dqn_final,
    dqn_final_return_std=greedy["return"].std(ddof=0),
    dqn_last10pct_training_return=tail.mean(),
    random_return=random_return,
    random_return_std=random_per_seed.std(ddof=0),
    random_episode_return_std=random_episode_std,
    random_best_return=random_logs["return"].max(),
    margin=margin,
    margin_in_random_episode_stds=margin / random_episode_std,
    dqn_final_sparsity=greedy["sparsity"].mean(),
    dqn_final_val_accuracy=greedy["val_accuracy"].mean(),
    dqn_final_test_accuracy_no_finetune=greedy["test_accuracy_no_finetune"].mean(),
)
print(
    f"DQN greedy return {dqn_final:.2f} ± {greedy['return'].std(ddof=0):.2f} vs random policy "
    f"{random_return:.2f} ± {random_per_seed.std(ddof=0):.2f} (mean ± std over "
    f"{len(sizes.seeds)} seeds): margin {margin:.2f}, i.e. {margin / random_episode_std:.1f} "
    f"standard deviations of a random episode's return; best random episode "
    f"{random_logs['return'].max():.2f}."
)
if PROFILE != "smoke":  # smoke trains too briefly to promise anything
    assert margin > 0, "the learned policy should beat the random policy at this profile"
""",
    ),
    (
        "md",
        """## 6 · What the agent learned per layer

Bars: the sparsity each seed's greedy policy gave each layer; the dashed line is the layer's
share of all prunable weights. The per-step reward pays for sparsity reached *early* and for
accuracy kept at *every* step, so large layers are worth pruning hard, while small layers that
the accuracy depends on are best left lightly pruned.""",
    ),
    (
        "code",
        """layers_df = pd.read_csv(run.file("greedy_layers.csv"))
fig = plots.layer_sparsity_bars(layers_df, title="Per-layer sparsity of the greedy policy")
run.save_fig(fig, "learned_layer_sparsity")
layers_df.pivot(index="layer", columns="seed", values="layer_sparsity").loc[env.layer_names]""",
    ),
    (
        "md",
        """## What the results mean

* **State.** Every feature is bounded and most of them are fixed per layer, so the Q-network
  sees a small, well-scaled input; the dynamic ones (sparsity and accuracy so far, previous
  action) carry the episode's history.
* **Actions.** For Gaussian-like layers `alpha` maps to sparsity through `erf(alpha / sqrt 2)`,
  but not for others (the uniformly initialised fc, heavy-tailed trained layers): the same alpha
  means different sparsities in different layers.
* **Reward.** The per-step reward charges the sparsity shortfall at every step, so the return
  mostly depends on reaching sparsity early without losing accuracy; `summary.json` records how
  far the learned policy is from `S*` and `A*` at the end.
* **Learning.** At the cpu profile, the DQN's greedy return ends above the random policy's by the
  margin printed above (`margin` in `summary.json`, also in units of a random episode's standard
  deviation). The smoke profile trains too briefly for that comparison to mean anything.
* **A fair caveat.** With 5 layers and 23 actions there are only 23^5 (about 6.4 million)
  policies, so the best of the random policy's episodes (`random_best_return`) gets close to the
  learned policy: random *search* is a strong baseline on a tiny network. The learned policy is
  what scales: ResNet-50 has 54 prunable layers, 23^54 policies, far beyond enumeration.

## Exercises

1. Switch to `reward_mode="episodic"` (AMC-style: reward only at the end) and compare how many
   episodes the DQN needs to reach the same return.
2. Train with `features="qlp"` (layer index and density only) or `"no_accuracy"`: which features
   does the agent really use?
3. Raise `S*` to 0.9: which layer does the agent sacrifice first, and what does it cost in test
   accuracy?
4. Fine-tune the greedy policy's masks with `pruning_core.train.fine_tune` and measure how much
   test accuracy comes back.""",
    ),
    ("code", "run.finish()"),
]


def build() -> nbformat.NotebookNode:
    """The notebook, without outputs, with the `parameters` tag on the parameters cell."""
    return build_notebook(CELLS)


if __name__ == "__main__":
    nbformat.write(build(), OUT)
    print(f"wrote {OUT}")

"""Generate notebooks/05_ablations.ipynb (without outputs) from the cells below.

Run from the repository root: ``.venv/bin/python notebooks/_build/build_05.py``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from common import build_notebook

OUT = Path(__file__).resolve().parent.parent / "05_ablations.ipynb"

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """# 05 · Ablations: which design choices of PuRL and NEON matter?

**What this notebook shows.** Both papers make many design choices at once. Here each is changed
on its own, against one default configuration, over several seeds:

1. **Reward timing**: PuRL's reward after every step against an AMC-style reward paid only at
   the end of the episode; how many episodes each needs to plateau.
2. **Reward shape**: the scale beta, the targets A\\* and S\\*, and NEON's reward (with its
   allowed loss C) in place of PuRL's.
3. **State**: all features against QLP's state (layer index and density only) and against
   everything but the accuracy so far.
4. **Action space**: PuRL's 23 thresholds alpha·std against grids of 12 and 6 values, against a
   grid of sparsity ratios, and one pass over the layers against three.
5. **Agent**: Double DQN against DQN, a small replay buffer, a fast epsilon decay, and random
   search with the same number of network evaluations.
6. **NEON**: 1 pass against 4, warm-up or none, structural removal against masking, fine-tuning
   the changed layers against the whole network.

A closing table ranks what mattered most, with its numbers.

**Why.** An ablation tells which parts of a method carry its results and which are incidental,
so that users know what they may change, and what they must keep, when they adapt it.

PuRL runs on notebook 01's small CNN trained on 8x8 digits (five prunable layers), NEON on small
random MLPs of a few suite datasets, so that every configuration can be trained several times on
a CPU. Every table and figure is written to `results/<profile>/05_ablations/` first and read back
from there.""",
    ),
    ("params", 'PROFILE = "cpu"'),
    (
        "md",
        """All sizes come from the profile in code (`ablation_sizes`): seeds, training episodes,
how often the greedy policy is evaluated, and the NEON networks and fine-tuning. Every run is
cached under `cache/05_ablations/`, keyed by a hash of its whole configuration, so an interrupted
notebook resumes at the first run that is not on disk, and a changed setting never reuses a stale
run. The dense CNN is notebook 01's (the same cache entry).""",
    ),
    (
        "code",
        """import pandas as pd
import torch

from pruning_core import ablations as A
from pruning_core.results import RunDir
from pruning_core.train import evaluate

# The networks are small: one thread is faster than two and steady on a shared machine.
torch.set_num_threads(1)
PURL_METRICS = ["yardstick", "sparsity", "test_accuracy"]
sizes = A.ablation_sizes(PROFILE)
run = RunDir("05_ablations", PROFILE, config=sizes)
dense = A.ablation_dense_model(sizes)
splits = dense.splits
dense_val = evaluate(dense.model, (splits.x_val, splits.y_val))["top1"]
dense_test = evaluate(dense.model, (splits.x_test, splits.y_test))["top1"]
print(
    f"seeds {sizes.seeds}; {sizes.episodes} DQN episodes per run "
    f"({sizes.timing_episodes} for reward timing); greedy evaluation every "
    f"{sizes.eval_every} ({sizes.timing_eval_every}) episodes"
)
print(f"dense small CNN: val {dense_val:.4f}, test {dense_test:.4f}")""",
    ),
    (
        "md",
        """## One yardstick for every run

The configurations pay different rewards (per step or at the end, beta 1 or 5, NEON's cubic
reward...), so their own returns cannot be compared. Every run is therefore judged by the same
**yardstick**: PuRL's reward of the **final** network of the greedy policy at the default targets,
`-5 * (max((A* - A)/A*, 0) + max((0.8 - S)/0.8, 0))` with A\\* the dense validation accuracy. It is
0 at best, it counts only the network that is left (what both reward schedules are ultimately
for), and it does not depend on the length of an episode. Next to it: the final sparsity, and the
test accuracy without fine-tuning (the test split is never seen during the search).

**Learning curve and plateau.** During training, every `eval_every` episodes the DQN pauses
(checkpoint, resume) and its greedy policy plays one episode. The plateau is the first of these
episodes at which the curve, smoothed by a trailing mean over 3 evaluations, has covered 95% of
the way from its start (the untrained greedy policy) to its final level (the mean of the last
quarter of the evaluations); a run that never improves on its start has plateaued at episode 0.
A run's final metrics (yardstick, sparsity, validation and test accuracy) are the means over the
same last quarter of its greedy evaluations: a single greedy episode is a noisy summary, because
after a short training the greedy policy still switches between a few policies, and one switch
to a policy that prunes a layer away costs 90 points of accuracy. Each configuration is trained
with every seed; tables give the mean and a 95% Student-t interval over seeds.""",
    ),
    (
        "md",
        """## 1 · Reward timing: every step against the end of the episode

The default MDP pays PuRL's reward after every layer (`reward_mode="step"`); the AMC-style
variant pays 0 until the last layer and then the reward of the final network
(`reward_mode="episodic"`). Everything else (network, agent, seeds, exploration) is the same.
Both train for the longer `timing_episodes` horizon so that a slow learner can plateau inside it;
epsilon still reaches its floor after the same number of episodes as in the other ablations, so
the plateau measures learning, not a longer exploration schedule.""",
    ),
    (
        "code",
        """timing_runs, timing_curves = A.reward_timing(sizes, dense)
run.write_table("reward_timing_runs", timing_runs)
run.write_table("reward_timing_curves", timing_curves, markdown=False)
timing_runs = pd.read_csv(run.file("reward_timing_runs.csv"))
timing_curves = pd.read_csv(run.file("reward_timing_curves.csv"))
timing_summary = A.summarise(
    timing_runs,
    [
        "episodes_to_plateau",
        "episodes_to_common_level",
        "mean_greedy_yardstick",
        *PURL_METRICS,
        "val_accuracy",
        "late_collapses",
    ],
)
run.write_table("reward_timing_summary", timing_summary)
timing_summary""",
    ),
    (
        "md",
        """The curves are the greedy policy's yardstick against training episodes: each seed (thin)
and their mean (bold); dashed lines mark each configuration's mean plateau episode, dotted lines
its mean episode of reaching the common level.

Two numbers answer "how many episodes does it need". **Episodes to plateau** compares each curve
with its *own* final level, as defined above; a configuration that settles early on a worse level
looks fast by this measure. **Episodes to a common level** therefore fixes one level per seed that
both reach, 95% of the way from the shared start (the same untrained network) to the *worse* of the
two final levels, and counts the episodes each needs to get there: learning speed on one scale.""",
    ),
    (
        "code",
        """fig = A.plot_curves(
    timing_curves,
    timing_runs,
    marks=["episodes_to_plateau", "episodes_to_common_level"],
    title="Reward timing: greedy policy during training",
)
run.save_fig(fig, "reward_timing_curves")

plateau = timing_summary[timing_summary["metric"] == "episodes_to_plateau"].set_index("variant")
final = timing_summary[timing_summary["metric"] == "yardstick"].set_index("variant")
common = timing_summary[timing_summary["metric"] == "episodes_to_common_level"].set_index("variant")
step_p, epi_p = plateau.loc["step", "mean"], plateau.loc["episodic", "mean"]
step_c, epi_c = common.loc["step", "mean"], common.loc["episodic", "mean"]
summary = run.summary(
    episodes_to_plateau_step=step_p,
    episodes_to_plateau_episodic=epi_p,
    plateau_ratio_episodic_over_step=A.finite_or_none(epi_p / step_p if step_p > 0 else None),
    episodes_to_plateau_step_ci=A.finite_or_none(
        [plateau.loc["step", "ci_low"], plateau.loc["step", "ci_high"]]
    ),
    episodes_to_plateau_episodic_ci=A.finite_or_none(
        [plateau.loc["episodic", "ci_low"], plateau.loc["episodic", "ci_high"]]
    ),
    episodes_to_common_level_step=step_c,
    episodes_to_common_level_episodic=epi_c,
    common_level_ratio_episodic_over_step=A.finite_or_none(epi_c / step_c if step_c > 0 else None),
    final_yardstick_step=final.loc["step", "mean"],
    final_yardstick_episodic=final.loc["episodic", "mean"],
    timing_episodes=sizes.timing_episodes,
    seeds=list(sizes.seeds),
)
print(
    f"episodes to plateau (95% of its own final level): per-step reward {step_p:.1f}, "
    f"end-of-episode reward {epi_p:.1f} (mean over {len(sizes.seeds)} seeds; horizon "
    f"{sizes.timing_episodes})"
)
print(
    f"episodes to a common level (95% of the way to the worse final level): per-step "
    f"{step_c:.1f}, end-of-episode {epi_c:.1f}"
)
print(
    f"final yardstick: per-step {final.loc['step', 'mean']:.3f}, end-of-episode "
    f"{final.loc['episodic', 'mean']:.3f}"
)""",
    ),
    (
        "md",
        """## 2 · Reward shape

Against the default (beta 5, A\\* = dense validation accuracy, S\\* = 0.8): beta 1 (the same
reward, five times smaller, so the Huber TD loss works in its quadratic range), a lower accuracy
target A\\* = 0.95, a higher sparsity target S\\* = 0.9, and NEON's reward computed from the same
step (`L` = % of the layer's remaining weights this step removed, C = 1 point, divided by 40³ as
NEON's agent does; `NeonRewardWrapper`). Every run is still judged by the default yardstick, so a
changed target shows up as a different operating point: read sparsity and accuracy too.""",
    ),
    (
        "code",
        """shape_runs = A.reward_shape(sizes, dense)
run.write_table("reward_shape_runs", shape_runs)
shape_runs = pd.read_csv(run.file("reward_shape_runs.csv"))
shape_summary = A.summarise(
    shape_runs, [*PURL_METRICS, "val_accuracy", "late_collapses", "episodes_to_plateau"]
)
run.write_table("reward_shape_summary", shape_summary)
fig = A.plot_runs(shape_runs, shape_summary, PURL_METRICS, title="Reward shape")
run.save_fig(fig, "reward_shape")
shape_summary[shape_summary["metric"].isin(PURL_METRICS)].round(4)""",
    ),
    (
        "md",
        """## 3 · State

The default observation has 20 features (layer descriptors, weight statistics, sparsity and
accuracy so far, the previous action). QLP's state keeps only the layer index and the layer's
density; the third variant drops the accuracy so far.""",
    ),
    (
        "code",
        """state_runs = A.state_features(sizes, dense)
run.write_table("state_runs", state_runs)
state_runs = pd.read_csv(run.file("state_runs.csv"))
state_summary = A.summarise(
    state_runs, [*PURL_METRICS, "val_accuracy", "late_collapses", "episodes_to_plateau"]
)
run.write_table("state_summary", state_summary)
fig = A.plot_runs(state_runs, state_summary, PURL_METRICS, title="State features")
run.save_fig(fig, "state")
state_summary[state_summary["metric"].isin(PURL_METRICS)].round(4)""",
    ),
    (
        "md",
        """## 4 · Action space

PuRL's 23 thresholds alpha in {0.0, 0.1, ..., 2.2} (prune |w| < alpha·std) against coarser
grids over the same range (12 values, step 0.2; 6 values, step 0.44), against 20 explicit
sparsity ratios {0, 0.05, ..., 0.95}, and against three passes over the layers (QLP-style: each
visit prunes the remaining weights further, so an episode has 15 steps instead of 5).""",
    ),
    (
        "code",
        """action_runs = A.action_space(sizes, dense)
run.write_table("action_space_runs", action_runs)
action_runs = pd.read_csv(run.file("action_space_runs.csv"))
action_summary = A.summarise(
    action_runs, [*PURL_METRICS, "val_accuracy", "late_collapses", "episodes_to_plateau", "seconds"]
)
run.write_table("action_space_summary", action_summary)
fig = A.plot_runs(action_runs, action_summary, PURL_METRICS, title="Action space")
run.save_fig(fig, "action_space")
action_summary[action_summary["metric"].isin(PURL_METRICS)].round(4)""",
    ),
    (
        "md",
        """## 5 · Agent

Double DQN (the default) against plain DQN, a replay buffer of `small_buffer` transitions
instead of one that keeps every transition, and epsilon decaying over the first 10% of the steps
instead of 50%. The last row is no learning at all: **random search** plays as many uniformly
random episodes as the DQN trains for (the same number of network evaluations) and keeps the one
with the best yardstick on the validation subset. Its curve is the best-so-far.""",
    ),
    (
        "code",
        """agent_runs, agent_curves = A.agent_choice(sizes, dense)
run.write_table("agent_runs", agent_runs)
run.write_table("agent_curves", agent_curves, markdown=False)
agent_runs = pd.read_csv(run.file("agent_runs.csv"))
agent_curves = pd.read_csv(run.file("agent_curves.csv"))
agent_summary = A.summarise(
    agent_runs, [*PURL_METRICS, "val_accuracy", "late_collapses", "episodes_to_plateau"]
)
run.write_table("agent_summary", agent_summary)
fig = A.plot_runs(agent_runs, agent_summary, PURL_METRICS, title="Agent")
run.save_fig(fig, "agent")
fig = A.plot_curves(
    agent_curves, agent_runs, title="Agent: greedy policy (random search: best so far)"
)
run.save_fig(fig, "agent_curves")
agent_summary[agent_summary["metric"].isin(PURL_METRICS)].round(4)""",
    ),
    (
        "md",
        """## 6 · NEON

NeonEnv and NEON's actor-critic on one small random MLP from each of a few suite datasets
(`neon_datasets`); every configuration trains an agent on all of them for `neon_episodes`
episodes with C fixed at `neon_C` points, then its greedy policy prunes each network once. The
default is NEON's: 4 passes, a random warm-up, structural removal, fine-tuning only the changed
layers. Metrics per run are means over the networks: compression of the greedy policy (original /
remaining parameters), the change of validation and test accuracy in points, the share of networks
kept within C; `train_compression` is the mean over the last quarter of the training episodes
(the sampled policy, which shows what the agent does when its argmax is still arbitrary), and the
training time per episode.""",
    ),
    (
        "code",
        """neon_runs, neon_nets = A.neon_ablation(sizes)
run.write_table("neon_runs", neon_runs)
run.write_table("neon_networks", neon_nets)
neon_runs = pd.read_csv(run.file("neon_runs.csv"))
NEON_METRICS = ["compression", "delta_test_pp", "train_compression", "seconds_per_episode"]
NEON_EFFECTS = [*NEON_METRICS, "delta_val_pp", "train_delta_val_pp"]
neon_summary = A.summarise(
    neon_runs, [*NEON_METRICS, "delta_val_pp", "within_C_share", "train_delta_val_pp"]
)
run.write_table("neon_summary", neon_summary)
fig = A.plot_runs(neon_runs, neon_summary, NEON_METRICS, title="NEON")
run.save_fig(fig, "neon")
neon_summary[neon_summary["metric"].isin(NEON_METRICS)].round(4)""",
    ),
    (
        "md",
        """## What mattered most

Every configuration against its ablation's default: the difference of the means over seeds,
its 95% Welch interval and Welch's t-test p-value (and Holm's adjustment over all the rows of a
family, since many configurations are compared with one default). PuRL rows are ranked by the
absolute change of the yardstick, NEON rows by the change of `train_compression` (the greedy
compression of an agent trained this briefly is close to arbitrary, see above; every metric's
effects are in `effects.csv`). With three seeds the intervals are wide: a large difference with an
interval that excludes 0 is a finding, a small one is not.""",
    ),
    (
        "code",
        """purl_runs = {
    "reward_timing": (timing_runs, "step"),
    "reward_shape": (shape_runs, "default"),
    "state": (state_runs, "default"),
    "action_space": (action_runs, "default"),
    "agent": (agent_runs, "default"),
}
effect_tables = [
    A.effects(r, [*PURL_METRICS, "episodes_to_plateau"], default=d) for r, d in purl_runs.values()
]
effect_tables[0] = pd.concat(
    [effect_tables[0], A.effects(timing_runs, ["episodes_to_common_level"], default="step")],
    ignore_index=True,
)
effect_tables.append(A.effects(neon_runs, NEON_EFFECTS))
run.write_table("effects", pd.concat(effect_tables, ignore_index=True))
rank = A.ranking(effect_tables, {"purl": "yardstick", "neon": "train_compression"})
run.write_table("ranking", rank)
rank = pd.read_csv(run.file("ranking.csv"))
fig = A.plot_effects(rank, title="Effect of each change against its default (95% Welch interval)")
run.save_fig(fig, "ranking")
top = rank.groupby("family").head(1).set_index("family")
run.summary(
    top_purl_factor=f"{top.loc['purl', 'ablation']}:{top.loc['purl', 'variant']}",
    top_purl_diff=top.loc["purl", "diff"],
    top_neon_factor=f"{top.loc['neon', 'ablation']}:{top.loc['neon', 'variant']}",
    top_neon_diff=top.loc["neon", "diff"],
)
rank.round(4)""",
    ),
    (
        "md",
        """## What was measured

The findings of this run, computed from the tables above (and written to `findings.md`). A smoke
run trains far too briefly for any of them to mean anything; read the cpu profile's.""",
    ),
    (
        "code",
        """from IPython.display import Markdown, display

facts = A.findings(
    {"reward_timing": timing_runs, "reward_shape": shape_runs, "state": state_runs,
     "action_space": action_runs, "agent": agent_runs, "neon": neon_runs},
    pd.read_csv(run.file("effects.csv")),
    rank,
)
run.write_text("findings.md", facts + "\\n")
display(Markdown(facts))""",
    ),
    (
        "md",
        """## What the results mean

How to read the measurements above, and what they say when they come out as in the committed cpu
run (3 seeds, `results/cpu/05_ablations/`):

* **Reward timing.** "Episodes to plateau" compares each curve with its *own* final level, so an
  agent that settles early on a worse level looks fast; episodes to the *common* level measure
  learning speed on one scale. When the per-step agent reaches the common level first and also
  ends higher, that is PuRL's claim at this scale: a reward at every step tells the agent which
  layer's action cost accuracy, while an end-of-episode reward must spread one number over all
  five decisions.
* **Random search is a strong baseline on a small MDP.** Five layers with 23 actions each and a
  smooth reward landscape: a blind search of as many episodes as the DQN trains for finds good
  configurations. An RL agent has to earn its keep on deeper networks, where 23^L policies put
  blind search out of reach. Compare the random-search line above with the best DQN
  configuration.
* **Stability of the greedy policy is what most changes buy.** After a short training the default
  greedy policy still sometimes prunes a layer away (the late collapses above), which drags its
  final level down. Changes that shrink or smooth the learning signal (smaller rewards, faster
  epsilon decay, plain DQN, coarser action grids) tend to remove those collapses; with three
  seeds such effects rarely survive Holm's adjustment. The learned policies are nearly
  state-independent (the same alpha for most layers), which is why QLP's two-feature state loses
  little.
* **Reward shape.** NEON's reward has no sparsity target: it pays `L` for a step within C and
  `-L³` beyond it, so timid pruning is safe and it keeps accuracy at low sparsity. PuRL's two
  targets trade accuracy against sparsity explicitly.
* **Action space.** A grid of sparsity ratios or several passes over the layers gives the agent
  more ways to reach the same network, so it needs more episodes to settle, and extra passes
  multiply the cost of an episode.
* **NEON.** The number of passes sets how far a policy can prune (each pass removes at most a
  share of what is left), so one pass caps compression. Masking instead of removal takes the
  same decisions on the same neurons and only costs time. After a few dozen episodes the greedy
  (argmax) policy is still close to arbitrary, which is why the ranking uses the sampled
  policy's compression.

What this does not show: the sizes are small (a 5-layer CNN, 100-200 episodes, 3 seeds, NEON
agents of 60 episodes on three networks), so effects smaller than about half a yardstick point
are within the noise, and the ranking may change at paper scale.

## Exercises

1. Give the end-of-episode reward a longer horizon (`timing_episodes`) and a slower epsilon
   decay: does it catch up with the per-step reward, and after how many episodes?
2. Random search is a strong baseline at this size. Raise the number of layers (a deeper CNN)
   and see whether the DQN overtakes it as the search space grows (23^L episodes).
3. Change the yardstick to the per-step return (sum of PuRL's rewards along the episode): which
   ranking changes, and why?
4. Add fine-tuning between steps (`PuRLConfig(finetune_steps=...)`) and redo the reward-timing
   ablation: does the per-step reward still help when accuracy can recover?
5. For NEON, train the agents longer (`neon_episodes`) and on more datasets: which of the four
   choices still matters once the policy has converged?""",
    ),
    ("code", "run.finish()"),
]


def build() -> nbformat.NotebookNode:
    """The notebook, without outputs, with the `parameters` tag on the parameters cell."""
    return build_notebook(CELLS)


if __name__ == "__main__":
    nbformat.write(build(), OUT)
    print(f"wrote {OUT}")

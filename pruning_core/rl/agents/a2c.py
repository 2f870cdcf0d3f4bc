"""NEON's agent: advantage actor-critic with Monte-Carlo returns, in one readable file.

The policy and the value function are two small MLPs over the environment's observation
(:class:`pruning_core.rl.envs.neon.NeonEnv`). Training (:meth:`ActorCriticAgent.train`) follows the
paper's recipe: Adam 1e-3, discounted Monte-Carlo returns (gamma 0.99) of whole episodes, one
update per episode (or per batch of ``episodes_per_update`` episodes), an entropy bonus, and a
warm-up of uniform random actions during which only the critic learns (the actions do not come
from the policy, so a policy-gradient step on them would be off-policy).

Experience is the cost: :meth:`ActorCriticAgent.train` also takes NEON's fast path
(:class:`~pruning_core.rl.envs.neon_batched.NeonBatch`: the env's episodes bit for bit, shared
action prefixes computed once), playing ``lockstep`` episodes at a time under one policy.

NEON's reward spans six orders of magnitude (``L = 40`` gives ``+-64,000``); the agent divides it
by ``reward_scale`` (40**3 by default: a step's reward is at most 1 in size where a layer loses
at most 40% of its neurons, and up to ``(50/40)**3``, about 1.95, where rounding makes a small
layer lose half; see :func:`~pruning_core.rl.rewards.neon_max_removed`) and normalises
advantages within a batch. The environment keeps the paper's reward unchanged.

With ``standardize_obs`` the agent standardises each observation feature with statistics fixed
from its warm-up episodes on the training networks (:class:`~.a2c_net.ObsStandardizer`), saved
with it, so training, inference and a loaded agent apply one transform.

Training stops at an episode cap or earlier by a rule of :mod:`.convergence`: a plateau of the
greedy validation return on networks kept out of the updates (:class:`PlateauRule`; the agent
then keeps its best check's weights), or the earlier entropy-collapse rule
(:class:`ConvergenceRule`). Entropy and actions of every episode are logged. Named settings:
:data:`A2C_PRESETS` (``paper`` is Hirsch & Katz's). NEON trains one agent per allowed loss ``C``
(:mod:`.a2c_set`).

Checkpoints (:mod:`.a2c_state`: ``save`` / ``load``) hold the network, the optimiser, the episode
counter, every random-number state, the observation statistics and the per-episode log, so an
interrupted :meth:`train` resumes where it stopped and gives the same agent as an uninterrupted
run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from pruning_core.config import progress, seeded
from pruning_core.rl.agents.a2c_config import A2C_PRESETS, A2CConfig, a2c_preset
from pruning_core.rl.agents.a2c_net import ActorCritic, ObsStandardizer, discounted_returns, gae
from pruning_core.rl.agents.a2c_state import Checkpointed
from pruning_core.rl.agents.convergence import ConvergenceRule, PlateauRule
from pruning_core.rl.envs.neon_batched import NeonBatch, NeonEpisode
from pruning_core.rl.rollout import rollout, uniform_random
from pruning_core.runs import (
    resume_checkpoint,
    save_checkpoint,
    write_csv,
)

__all__ = [
    "A2CConfig",
    "A2C_PRESETS",
    "ActorCritic",
    "ActorCriticAgent",
    "ConvergenceRule",
    "ObsStandardizer",
    "PlateauRule",
    "a2c_preset",
    "discounted_returns",
    "gae",
]


class ActorCriticAgent(Checkpointed):
    """An A2C agent for a ``Discrete`` action space over ``Box`` observations."""

    def __init__(self, obs_dim: int, n_actions: int, config: A2CConfig | None = None) -> None:
        self.config = config or A2CConfig()
        self.obs_dim = int(obs_dim)
        self.n_actions = int(n_actions)
        with seeded(self.config.seed):  # the initial weights, without touching the global RNG
            self.net = ActorCritic(self.obs_dim, self.n_actions, self.config.hidden)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.config.lr)
        self.rng = np.random.default_rng(self.config.seed)
        self.torch_gen = torch.Generator().manual_seed(self.config.seed)
        self.episodes_done = 0
        self.log_rows: list[dict[str, Any]] = []
        self.env_rng_state: dict[str, Any] | None = None
        self.converged_at: int | None = None
        """The episode at which a stopping rule stopped training (None: not yet)."""
        self.obs_norm: ObsStandardizer | None = None
        """The fixed observation transform (``standardize_obs``; None until fitted)."""
        self.best: dict[str, Any] | None = None
        """The best validation check so far (:class:`PlateauRule`): return, episode, weights."""

    @classmethod
    def for_env(cls, env: gym.Env, config: A2CConfig | None = None) -> ActorCriticAgent:
        """An agent sized for ``env``'s observation and action spaces."""
        return cls(int(np.prod(env.observation_space.shape)), int(env.action_space.n), config)

    # --- acting ----------------------------------------------------------------------------
    def _obs(self, obs: Any) -> torch.Tensor:
        """The network's input for raw observation(s): the one transform of training and acting."""
        t = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        if t.shape[-1] != self.obs_dim:
            raise ValueError(
                f"observation has {t.shape[-1]} numbers, the agent expects {self.obs_dim}: it was "
                "trained for another observation layout (retrain it or use a matching env)."
            )
        if self.config.standardize_obs:
            if self.obs_norm is None:
                raise RuntimeError("standardize_obs: the statistics are fitted in train()")
            t = self.obs_norm(t)
        return t

    @torch.no_grad()
    def policy(self, obs: Any) -> np.ndarray:
        """Action probabilities for one observation."""
        logits, _ = self.net(self._obs(obs))
        return torch.softmax(logits, -1).numpy()

    @torch.no_grad()
    def act(self, obs: Any, greedy: bool = False) -> int:
        """An action: the most probable (``greedy``) or one sampled from the policy."""
        logits, _ = self.net(self._obs(obs))
        if greedy:
            return int(torch.argmax(logits))
        return int(torch.multinomial(torch.softmax(logits, -1), 1, generator=self.torch_gen))

    # --- learning --------------------------------------------------------------------------
    def update(self, batch: list[dict[str, Any]], critic_only: bool = False) -> dict[str, float]:
        """One gradient step on whole episodes (``obs``, ``actions``, ``rewards`` per episode).

        Advantages are generalised advantage estimates with ``gae_lambda``; with the default 1.0
        they are exactly the Monte-Carlo return minus the critic's value (NEON's A2C).
        """
        cfg = self.config
        obs = self._obs(np.concatenate([e["obs"] for e in batch]))
        actions = torch.as_tensor(np.concatenate([e["actions"] for e in batch]), dtype=torch.long)
        logits, values = self.net(obs)
        with torch.no_grad():
            v = values.detach().numpy().astype(np.float64)
        advs, targets, start = [], [], 0
        for e in batch:
            r = np.asarray(e["rewards"], dtype=np.float64) / cfg.reward_scale
            ve = v[start : start + len(r)]
            start += len(r)
            adv = gae(r, ve, cfg.gamma, cfg.gae_lambda)
            advs.append(adv)
            targets.append(adv + ve)
        adv_t = torch.as_tensor(np.concatenate(advs), dtype=torch.float32)
        target_t = torch.as_tensor(np.concatenate(targets), dtype=torch.float32)
        if cfg.normalize_advantages and len(adv_t) > 1:
            adv_t = adv_t / (adv_t.pow(2).mean().sqrt() + 1e-8)
        value_loss = F.mse_loss(values, target_t)
        logp_all = torch.log_softmax(logits, -1)
        entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
        policy_loss = -(logp_all.gather(1, actions[:, None]).squeeze(1) * adv_t).mean()
        loss = cfg.value_coef * value_loss
        if not critic_only:
            loss = loss + policy_loss - cfg.entropy_coef * entropy
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.actor.parameters(), cfg.max_grad_norm)
        nn.utils.clip_grad_norm_(self.net.critic.parameters(), cfg.max_grad_norm)
        self.opt.step()
        return {
            "policy_loss": policy_loss.item(),
            "value_loss": value_loss.item(),
            "entropy": entropy.item(),
        }

    def run_episode(
        self,
        env: gym.Env,
        random_actions: bool = False,
        greedy: bool = False,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Play one episode; returns the trajectory (as :meth:`update` takes it) and the last info.

        Actions are uniformly random (``random_actions``, from the agent's NumPy RNG), the most
        probable (``greedy``) or sampled from the policy (from the agent's torch generator).
        """
        if random_actions:
            policy = uniform_random(self.n_actions, self.rng)
        else:
            policy = partial(self.act, greedy=greedy)
        ep = rollout(env, policy, seed=seed, options=options, keep_observations=True)
        out = {
            "obs": np.stack([np.asarray(o, dtype=np.float32) for o in ep.observations[:-1]]),
            "actions": np.asarray(ep.actions),
            "rewards": np.asarray(ep.rewards),
        }
        return out, ep.info

    def train(
        self,
        env: gym.Env,
        episodes: int,
        checkpoint_path: str | Path | None = None,
        log_path: str | Path | None = None,
        checkpoint_every: int = 10,
        desc: str = "A2C",
        on_episode: Callable[[dict[str, Any]], None] | None = None,
        lockstep: int = 16,
        stop: ConvergenceRule | PlateauRule | None = None,
        val_env: NeonBatch | None = None,
    ) -> pd.DataFrame:
        """Train until ``episodes`` episodes in total have been played, or until ``stop`` ends
        training (then ``episodes`` is a cap); returns the log.

        With ``checkpoint_path``, an existing checkpoint there is loaded first (training resumes
        from its episode count and random states; a corrupt one is set aside and training
        starts afresh) and a new one is written every ``checkpoint_every`` episodes and at the
        end. ``log_path`` receives the per-episode CSV log after every episode.

        ``env`` is a gymnasium env, played one episode at a time, or a
        :class:`~pruning_core.rl.envs.neon_batched.NeonBatch` (NEON's fast path: the same
        episodes, cheaper), which plays ``lockstep`` episodes at a time under the current
        policy; each of them then updates the agent as before (groups end at checkpoints and
        checks, so resuming replays the uninterrupted run). With ``standardize_obs`` the first
        group is the warm-up, whose observations fix the transform before any update.

        ``stop`` needs a ``NeonBatch``. A :class:`PlateauRule` plays greedy episodes on
        ``val_env`` (networks kept out of the updates) every ``check_every`` episodes, logs
        ``val_return`` and stops on a plateau, keeping the best check's weights; a
        :class:`ConvergenceRule` probes ``env`` once the entropy has fallen (``greedy_return``).
        :attr:`converged_at` is the episode training stopped at; a stopped agent resumed from
        its checkpoint trains no further.
        """
        cfg = self.config
        if stop is not None and not isinstance(env, NeonBatch):
            raise ValueError("a stopping rule probes the greedy policy on a NeonBatch")
        if isinstance(stop, PlateauRule) and val_env is None:
            raise ValueError("a PlateauRule needs val_env: networks kept out of the updates")
        if cfg.standardize_obs and cfg.warmup_episodes < 1:
            raise ValueError("standardize_obs fits its statistics on the warm-up: warmup >= 1")
        state = resume_checkpoint(checkpoint_path) if checkpoint_path is not None else None
        if state is not None:
            self.load_state(state)
        if self.env_rng_state is not None:
            env.reset(seed=cfg.seed)  # creates env.np_random, then restore its state
            env.np_random.bit_generator.state = self.env_rng_state
        elif self.episodes_done == 0:
            env.reset(seed=cfg.seed)
        if lockstep < 1:
            raise ValueError(f"lockstep must be >= 1, got {lockstep}")
        batch: list[dict[str, Any]] = []
        played: list[tuple[dict[str, Any], dict[str, Any], bool, float]] = []
        bar = progress(
            total=episodes, initial=min(self.episodes_done, episodes), desc=desc, unit="ep"
        )
        try:
            while self.episodes_done < episodes and self.converged_at is None:
                if not played:
                    played = self._next_group(env, episodes, lockstep, checkpoint_path,
                                              checkpoint_every, stop)  # fmt: skip
                traj, report, warm, seconds = played.pop(0)
                batch.append(traj)
                losses: dict[str, float] = {}
                if len(batch) >= cfg.episodes_per_update:
                    losses = self.update(batch, critic_only=warm)
                    batch = []
                self.episodes_done += 1
                row = {
                    "episode": self.episodes_done,
                    "warmup": warm,
                    "task": report.get("task"),
                    "C": report.get("C"),
                    "return": float(traj["rewards"].sum()),
                    "scaled_return": float(traj["rewards"].sum() / cfg.reward_scale),
                    "steps": len(traj["rewards"]),
                    "mean_keep_action": float(np.mean(traj["actions"])),
                    "actions": "".join(map(str, traj["actions"])),
                    "compression": report.get("compression"),
                    "delta_val_pp": report.get("delta_val_pp"),
                    "seconds": seconds,
                    **losses,
                }
                self.log_rows.append(row)
                if on_episode is not None:
                    on_episode(row)
                if log_path is not None:
                    write_csv(log_path, self.log())
                bar.update(1)
                bar.set_postfix(ret=round(row["scaled_return"], 3), ent=row.get("entropy"))
                boundary = not batch
                if stop is not None and boundary and not played:
                    assert isinstance(env, NeonBatch)
                    probed = (self._check_plateau(val_env, stop) if isinstance(stop, PlateauRule)
                              else self._check(env, stop))  # fmt: skip
                    if probed and log_path is not None:
                        write_csv(log_path, self.log())
                if (
                    checkpoint_path is not None
                    and boundary
                    and (
                        self.episodes_done % checkpoint_every == 0
                        or self.episodes_done >= episodes
                        or self.converged_at is not None
                    )
                ):
                    self.env_rng_state = env.np_random.bit_generator.state
                    save_checkpoint(checkpoint_path, self.state())
        finally:
            bar.close()
        if batch:  # a partial batch at the very end still teaches something
            self.update(batch, critic_only=self.episodes_done <= cfg.warmup_episodes)
        if self.best is not None:  # a plateau rule keeps its best check's weights
            self.net.load_state_dict(self.best["net"])
            if checkpoint_path is not None:  # and so does the agent read back from its file
                save_checkpoint(checkpoint_path, self.state())
        return self.log()

    def _next_group(
        self,
        env: gym.Env | NeonBatch,
        episodes: int,
        lockstep: int,
        checkpoint_path: str | Path | None,
        checkpoint_every: int,
        stop: ConvergenceRule | PlateauRule | None,
    ) -> list[tuple[dict[str, Any], dict[str, Any], bool, float]]:
        """The next group of training episodes (ending at checkpoints and checks); with an
        unfitted ``standardize_obs``, the whole warm-up, whose observations fix the transform."""
        n = min(lockstep, episodes - self.episodes_done)
        if checkpoint_path is not None:  # a group never straddles a checkpoint
            n = min(n, checkpoint_every - self.episodes_done % checkpoint_every)
        if stop is not None:  # nor a check
            n = min(n, stop.check_every - self.episodes_done % stop.check_every)
        if not (self.config.standardize_obs and self.obs_norm is None):
            return self._play(env, n)
        n = max(1, min(self.config.warmup_episodes - self.episodes_done, episodes - self.episodes_done))
        group: list[tuple[dict[str, Any], dict[str, Any], bool, float]] = []
        while len(group) < n:
            group += self._play(env, n - len(group))
        if not all(w for *_, w, _s in group):
            raise RuntimeError("standardize_obs: a resumed agent lost its fitted statistics")
        self.obs_norm = ObsStandardizer.fit(np.concatenate([g[0]["obs"] for g in group]))
        return group

    def _check_plateau(self, val_env: NeonBatch | None, stop: PlateauRule) -> bool:
        """At a check episode after the warm-up: the greedy validation return, the best weights
        so far, and :attr:`converged_at` on a plateau. True when a check was made."""
        done = self.episodes_done
        if done % stop.check_every or done <= self.config.warmup_episodes or val_env is None:
            return False
        val = self.validation_return(val_env)
        self.log_rows[-1]["val_return"] = val
        if self.best is None or val > self.best["val_return"]:
            net = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            self.best = {"val_return": val, "episode": done, "net": net}
        vals = [r["val_return"] for r in self.log_rows if r.get("val_return") is not None
                and math.isfinite(r["val_return"])]  # fmt: skip
        if stop.plateaued(vals):
            self.converged_at = done
            self.log_rows[-1]["converged"] = True
        return True

    def validation_return(self, val_env: NeonBatch) -> float:
        """Mean greedy return / reward_scale over every task of ``val_env`` at each of its C
        values (no learning, no random draws)."""
        return self.probe(val_env, len(val_env.tasks))

    def _check(self, env: NeonBatch, stop: ConvergenceRule) -> bool:
        """At a check episode: the entropy test, then (if it passes) a greedy probe compared
        with the previous check's; sets :attr:`converged_at`. True when a probe was played."""
        done = self.episodes_done
        learning = done - self.config.warmup_episodes
        if done % stop.check_every or learning < stop.window:
            return False
        rows = [r for r in self.log_rows if not r["warmup"]]
        if not stop.entropy_converged([r.get("entropy", math.nan) for r in rows], self.n_actions):
            return False
        greedy = self.probe(env, stop.probe_tasks)
        self.log_rows[-1]["greedy_return"] = greedy
        before = [r for r in self.log_rows if r["episode"] == done - stop.check_every]
        previous = before[0].get("greedy_return") if before else None
        if previous is not None and not math.isfinite(previous):
            previous = None
        if stop.returns_stable(previous, greedy):
            self.converged_at = done
            self.log_rows[-1]["converged"] = True
        return True

    def probe(self, env: NeonBatch, tasks: int) -> float:
        """Mean greedy return / reward_scale on the first ``tasks`` tasks at each of the env's C
        values (no learning, no random draws)."""
        starts = [
            (t, float(C))
            for t in range(min(tasks, len(env.tasks)))
            for C in env.config.C_values
        ]
        out = self.run_batch(env, len(starts), greedy=True, starts=starts)
        return float(np.mean([ep.episode_return for _traj, ep in out]) / self.config.reward_scale)

    def _play(
        self, env: gym.Env | NeonBatch, n: int
    ) -> list[tuple[dict[str, Any], dict[str, Any], bool, float]]:
        """The next training episodes: ``(trajectory, report, warm-up?, seconds)`` each; one from
        a gymnasium env, ``n`` from a :class:`NeonBatch`."""
        warmup = self.config.warmup_episodes
        t0 = time.perf_counter()
        if not isinstance(env, NeonBatch):
            warm = self.episodes_done < warmup
            traj, _info = self.run_episode(env, random_actions=warm)
            unwrapped = env.unwrapped
            report = unwrapped.episode_report() if hasattr(unwrapped, "episode_report") else {}
            return [(traj, report, warm, time.perf_counter() - t0)]
        warm = [self.episodes_done + i < warmup for i in range(n)]
        out = self.run_batch(env, n, random_actions=warm)
        seconds = (time.perf_counter() - t0) / n
        return [(traj, ep.report, w, seconds) for (traj, ep), w in zip(out, warm, strict=True)]

    def run_batch(
        self,
        env: NeonBatch,
        n: int,
        random_actions: bool | Sequence[bool] = False,
        greedy: bool = False,
        starts: Sequence[tuple[int | None, float | None]] | None = None,
    ) -> list[tuple[dict[str, Any], NeonEpisode]]:
        """Play ``n`` episodes of NEON's fast path in lockstep (or one per ``starts`` entry);
        per episode the trajectory (as :meth:`update` takes it) and the episode.

        Actions are drawn as :meth:`run_episode` draws them (per episode: uniformly random from
        the NumPy RNG where ``random_actions`` says so, else greedy or sampled from the policy),
        the episodes' draws interleaved step by step.
        """
        warm = [random_actions] * n if isinstance(random_actions, bool) else list(random_actions)
        if starts is not None and len(starts) != n:
            raise ValueError(f"{len(starts)} starts for {n} episodes")
        if len(warm) != n:
            raise ValueError(f"{len(warm)} random_actions flags for {n} episodes")

        def policy(obs: np.ndarray, ids: Sequence[int]) -> list[int]:
            return [
                int(self.rng.integers(self.n_actions)) if warm[i] else self.act(o, greedy=greedy)
                for o, i in zip(obs, ids, strict=True)
            ]

        episodes = env.play(policy, n=n, starts=starts)
        return [
            (
                {
                    "obs": np.stack(ep.observations).astype(np.float32),
                    "actions": np.asarray(ep.actions),
                    "rewards": np.asarray(ep.rewards),
                },
                ep,
            )
            for ep in episodes
        ]

    def log(self) -> pd.DataFrame:
        """The per-episode training log."""
        return pd.DataFrame(self.log_rows)

"""Reinforcement learning: rewards, the episode loop (:mod:`.rollout`), the two MDPs, the agents."""

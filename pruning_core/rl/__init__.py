"""Reinforcement learning: rewards, the episode loop, the two MDPs and their agents."""

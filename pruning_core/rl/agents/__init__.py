"""Agents: DQN for PuRL (:mod:`.dqn`), advantage actor-critic for NEON (:mod:`.a2c`)."""

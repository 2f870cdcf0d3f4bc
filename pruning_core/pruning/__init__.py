"""Model -> masks: the masking API (:mod:`.masks`), neuron removal (:mod:`.neurons`), reports
(:mod:`.report`), checkpoints (:mod:`.export`) and sparse-kernel inference (:mod:`.sparse`).
"""

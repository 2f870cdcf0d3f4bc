"""One call per method: PuRL (:mod:`.purl`), NEON (:mod:`.neon`) and the baselines they
are compared with (:mod:`.baselines`).
"""

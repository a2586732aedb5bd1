"""covbench's checkpoint zoo: the trainer (``covbench zoo train``), exact path scoring, the Fig. 1
evaluation (``covbench zoo eval``) and the shipped family under ``checkpoints/`` (docs/zoo.md).

Modules: ``config`` (typed presets), ``data`` (docs → token batches), ``model`` (build/save/load HF
checkpoints), ``scoring`` (teacher-force every valid path), ``trainer`` (pre-training with a stop rule,
online fine-tuning), ``evaluate`` (CE, KL, Cov_N, exact Pass@N, min-KL vs tournament picks), ``cli``.
"""

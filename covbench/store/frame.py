"""``covbench.store.to_dataframe``: the catalog as a pandas table, one row per (model, task).

The way Inspect and HELM let users analyse logs: filter, group and plot the stored results with pandas,
without the site. Built from the catalog's columnar metrics, so 10,000 runs take well under a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .index import Catalog

_IDENTITY = ("model", "task", "family", "step", "description")
_PROVENANCE = ("covbench_version", "lm_eval_version", "git_commit", "task_hash", "model_spec_hash", "seed",
               "machine", "time")


def dataframe(cat: Catalog) -> pd.DataFrame:
    cols: dict[str, object] = {name: [s.get(name) for s in cat.smalls] for name in _IDENTITY}
    cols["step"] = pd.array(cols["step"], dtype="Int64")
    cols["reference"] = [d.reference for d in cat.descriptors]
    cols["kind"] = [d.kind for d in cat.descriptors]
    cols["pairs_with"] = [d.pairs_with for d in cat.descriptors]
    cols["rank_pass_n"] = [d.rank.pass_n for d in cat.descriptors]
    cols["rank_cov_n"] = [d.rank.cov_n for d in cat.descriptors]
    cols["path"] = [str(cat.root / r) for r in cat.rels]
    for name in _PROVENANCE:
        cols[name] = [s["provenance"].get(name) for s in cat.smalls]
    sampling_keys = sorted({k for s in cat.smalls for k in s["provenance"].get("sampling", {})})
    for key in sampling_keys:
        cols[f"sampling.{key}"] = [s["provenance"].get("sampling", {}).get(key) for s in cat.smalls]
    for k, key in enumerate(cat.keys):
        block = np.where(cat.present[:, k, None], cat.values[:, k, :], np.nan)
        cols[key] = block[:, 0]
        cols[f"{key}.lo"] = block[:, 1]
        cols[f"{key}.hi"] = block[:, 2]
        cols[f"{key}.stderr"] = block[:, 3]
    return pd.DataFrame(cols)

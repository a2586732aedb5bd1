"""Coverage of τ intervals by simulation (docs/statistics.md#tau-coverage): covbench's pairwise-order
interval against the bootstrap intervals it replaced or could have used.

Ten models; per prompt, proxy (CE-like, lower is better) and target (Pass-like) values share a prompt
difficulty (a paired design) plus noise; the models' population means are spaced ``gap`` apart. The
truth is τ of the population means. For each regime: the share of R draws whose 95% interval holds the
truth, and the mean width. The bootstrap intervals (percentile; percentile re-centred on the point, the
interval covbench used before; BCa) exist only here, for comparison.

    python scripts/tau_coverage.py [--reps 200] [--B 200]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from covbench.metrics import rank_agreement
from covbench.metrics._bootstrap import bootstrap_counts


def _taus(ce: np.ndarray, ps: np.ndarray, counts: np.ndarray) -> np.ndarray:
    pm, tm = (-ce @ counts.T) / counts.sum(1), (ps @ counts.T) / counts.sum(1)
    return np.array([stats.kendalltau(pm[:, r], tm[:, r]).statistic for r in range(counts.shape[0])])


def _bca(point: float, boot: np.ndarray, jack: np.ndarray) -> tuple[float, float]:
    b = boot.size
    z0 = stats.norm.ppf(np.clip((np.sum(boot < point) + 0.5 * np.sum(boot == point)) / b, 0.5 / b, 1 - 0.5 / b))
    d = jack.mean() - jack
    den = 6 * np.sum(d * d) ** 1.5
    a = np.sum(d**3) / den if den > 0 else 0.0
    qs = [stats.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))) for z in (stats.norm.ppf(0.025), stats.norm.ppf(0.975))]
    return float(np.quantile(boot, qs[0], method="lower")), float(np.quantile(boot, qs[1], method="higher"))


def regime(gap: float, n_prompts: int, reps: int, B: int, seed: int = 7) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(seed)
    k = 10
    mu = np.arange(k) * gap
    nu = -mu + rng.normal(0, 2 * gap, k)
    truth = stats.kendalltau(-mu, nu).statistic
    hits = {m: [] for m in ("pairwise", "percentile", "re-centred", "BCa")}
    for r in range(reps):
        d = rng.normal(0, 1, n_prompts)
        ce = mu[:, None] + d[None, :] + rng.normal(0, 1, (k, n_prompts))
        ps = nu[:, None] - 0.5 * d[None, :] + rng.normal(0, 1, (k, n_prompts))
        t = rank_agreement(ce, ps, proxy_higher_is_better=False)
        hits["pairwise"].append((t.lo <= truth <= t.hi, t.hi - t.lo))
        boot = _taus(ce, ps, bootstrap_counts(n_prompts, B, r))
        jack = _taus(ce, ps, 1.0 - np.eye(n_prompts))
        point = t.tau
        lo, hi = np.quantile(boot, 0.025, method="lower"), np.quantile(boot, 0.975, method="higher")
        hits["percentile"].append((lo <= truth <= hi, hi - lo))
        shift = point - np.median(boot)
        hits["re-centred"].append((lo + shift <= truth <= hi + shift, hi - lo))
        blo, bhi = _bca(point, boot, jack)
        hits["BCa"].append((blo <= truth <= bhi, bhi - blo))
    return {m: (float(np.mean([h for h, _ in v])), float(np.mean([w for _, w in v]))) for m, v in hits.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--B", type=int, default=200)
    args = p.parse_args()
    print("| prompts | gap | pairwise (covbench) | percentile | re-centred percentile | BCa |")
    print("|---|---|---|---|---|---|")
    for n_prompts in (64, 256):
        for gap in (0.02, 0.1, 0.3, 1.0):
            r = regime(gap, n_prompts, args.reps, args.B)
            cells = " | ".join(f"{c:.2f} (width {w:.2f})" for c, w in r.values())
            print(f"| {n_prompts} | {gap} | {cells} |", flush=True)


if __name__ == "__main__":
    main()

"""Simulation study of :func:`verifier_coverage` against known per-prompt probabilities.

Each replication draws m prompts' p from a mixing distribution, then c ~ Binomial(n, p) verdicts, and
runs :func:`verifier_coverage`. Over R seeded replications it reports the bias and RMSE of the point
estimate (where reported), how often ``[lo, hi]`` covers the true Cov_M, of the sample's p and of the
mixing distribution, and the mean widths. ``python -m covbench.metrics._verifier_sim`` prints the
table of docs/verifier-coverage.md §9 (``--reps``, ``--seed``, ``--quick``); ``--resolution`` the
table of §7 (the NPMLE's RMSE by M/n, which sets the resolution limit).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ._coverage import coverage_profile
from ._npmle import binomial_npmle
from ._verifier import cov_set_bounds, verifier_coverage


@dataclass(frozen=True)
class Mixture:
    """A mixing distribution of p by its quantile function ``ppf(u, t)`` (it may depend on t = 1/M)."""

    name: str
    ppf: Callable[[np.ndarray, float], np.ndarray]

    def sample(self, rng: np.random.Generator, size: int, t: float) -> np.ndarray:
        """``size`` independent draws of p."""
        return self.ppf(rng.random(size), t)

    def cov(self, t: float) -> float:
        """``P[p ≤ t]``, the population's Cov_M (from a fine quantile grid; exact for atoms)."""
        with np.errstate(divide="ignore"):
            return float(coverage_profile(-np.log(self.ppf(_quantile_grid(), t)), 1.0 / t))


def _quantile_grid(size: int = 100_000) -> np.ndarray:
    return (np.arange(size) + 0.5) / size


MIXTURES: dict[str, Mixture] = {m.name: m for m in (
    Mixture("point 0.05", lambda u, t: np.full(u.shape, 0.05)),
    Mixture("point just below 1/M", lambda u, t: np.full(u.shape, t * (1 - 1e-9))),
    Mixture("Beta(0.5, 2)", lambda u, t: stats.beta.ppf(u, 0.5, 2.0)),
    Mixture("30% at 0 + Beta(4, 2)",
            lambda u, t: np.where(u < 0.3, 0.0, stats.beta.ppf(np.clip((u - 0.3) / 0.7, 0.0, 1.0), 4.0, 2.0))),
    Mixture("½ at 1/(2M) + ½ at 2/M", lambda u, t: np.where(u < 0.5, 0.5 * t, min(2.0 * t, 1.0))),
)}


@dataclass(frozen=True)
class SimResult:
    """One threshold M, R replications: the truths and the estimator's outputs, one entry per replication."""

    M: float
    truth_sample: np.ndarray
    truth_population: float
    point: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    bound_lo: np.ndarray
    bound_hi: np.ndarray

    def coverage(self, population: bool = False) -> float:
        """Share of replications with ``lo ≤ truth ≤ hi``."""
        truth = self.truth_population if population else self.truth_sample
        return float(np.mean((self.lo <= truth) & (truth <= self.hi)))

    def point_error(self) -> tuple[float, float]:
        """Bias and RMSE of ``point`` against the sample's Cov_M, over the replications that report it."""
        err = (self.point - self.truth_sample)[np.isfinite(self.point)]
        if err.size == 0:
            return math.nan, math.nan
        return float(err.mean()), float(np.sqrt(np.mean(err**2)))


def simulate(mixture: Mixture, n: int | Sequence[int], m: int, M: float, reps: int, seed: int,
             level: float = 0.95) -> SimResult:
    """R = ``reps`` seeded replications of m prompts with n samples each (a sequence of n: ragged,
    each prompt's n drawn uniformly from it).

    Examples:
        >>> r = simulate(MIXTURES["point 0.05"], 16, 50, 4.0, reps=2, seed=0)
        >>> r.truth_sample.tolist(), r.truth_population, r.coverage()
        ([1.0, 1.0], 1.0, 1.0)
    """
    rng = np.random.default_rng(seed)
    t = 1.0 / M
    out = {k: np.full(reps, np.nan) for k in ("truth_sample", "point", "lo", "hi", "bound_lo", "bound_hi")}
    for r in range(reps):
        sizes = np.full(m, n) if np.ndim(n) == 0 else rng.choice(np.asarray(n), size=m)
        p = mixture.sample(rng, m, t)
        est = verifier_coverage(sizes, rng.binomial(sizes, p), M, level=level)
        with np.errstate(divide="ignore"):
            out["truth_sample"][r] = coverage_profile(-np.log(p), M)
        for key in ("point", "lo", "hi", "bound_lo", "bound_hi"):
            out[key][r] = getattr(est, key)
    return SimResult(float(M), truth_population=mixture.cov(t), **out)


def identified_set(mixture: Mixture, n: int | Sequence[int], M: float, size: int = 5_000) -> tuple[float, float]:
    """The identified set of Cov_M for the mixing distribution: :func:`cov_set_bounds` on ``size``
    quantiles of p (each n of a ragged design paired with every quantile).

    Examples:
        >>> [round(v, 3) for v in identified_set(MIXTURES["point 0.05"], 16, 8.0)]
        [1.0, 1.0]
    """
    u = _quantile_grid(size)
    sizes = np.atleast_1d(np.asarray(n, dtype=np.int64))
    lo, hi = cov_set_bounds(np.repeat(sizes, u.size), np.tile(mixture.ppf(u, 1.0 / M), sizes.size), M)
    return float(lo), float(hi)


#: Rows of the table, in the order they are run: (mixture, n, M); a tuple n is ragged.
TABLE_ROWS: tuple[tuple[str, int | tuple[int, ...], float], ...] = (
    *((name, 16, m) for name in MIXTURES for m in (2.0, 8.0, 32.0)),
    *((name, n, 8.0) for n in (4, 64) for name in MIXTURES),
    ("30% at 0 + Beta(4, 2)", (8, 12, 16, 20, 24), 8.0),
    ("Beta(0.5, 2)", (8, 12, 16, 20, 24), 8.0),
    ("Beta(0.5, 2)", 1, 2.0),
)
TABLE_PROMPTS = 200
TABLE_HEADER = ("| mixing distribution | n | M | Cov_M | identified set | point bias | point RMSE | point shown "
                "| cover (sample) | cover (population) | mean width | mean width of [bound_lo, bound_hi] |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|")


def table_row(name: str, n: int | tuple[int, ...], M: float, reps: int, seed: int) -> str:
    """One row of the table of docs/verifier-coverage.md §9."""
    mixture = MIXTURES[name]
    res = simulate(mixture, n, TABLE_PROMPTS, M, reps, seed)
    bias, rmse = res.point_error()
    ident = identified_set(mixture, n, M)
    label = f"{min(n)}–{max(n)}" if isinstance(n, tuple) else str(n)
    return (f"| {name} | {label} | {M:g} | {res.truth_population:.3f} | [{ident[0]:.3f}, {ident[1]:.3f}] "
            f"| {_fmt(bias, signed=True)} | {_fmt(rmse)} | {np.isfinite(res.point).mean():.2f} "
            f"| {res.coverage():.3f} | {res.coverage(population=True):.3f} | {np.mean(res.hi - res.lo):.3f} "
            f"| {np.mean(res.bound_hi - res.bound_lo):.3f} |")


def resolution_table(reps: int, seed: int, ns: Sequence[int] = (4, 16, 64),
                     ratios: Sequence[float] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0), m: int = TABLE_PROMPTS) -> str:
    """RMSE of the NPMLE's G([0, 1/M]) (the point estimate before the resolution rule) by M/n.

    Examples:
        >>> print(resolution_table(2, 0, ns=(4,), ratios=(0.5,), m=20).splitlines()[2][:11])
        | 4 | 0.5 |
    """
    names = list(MIXTURES)
    lines = ["| n | M/n | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for n in ns:
        for ratio in ratios:
            big_m = n * ratio
            if big_m < 1.0:
                continue
            rmse = []
            for name in names:
                rng = np.random.default_rng(seed)
                err = []
                for _ in range(reps):
                    p = MIXTURES[name].sample(rng, m, 1.0 / big_m)
                    sizes = np.full(m, n)
                    fit = binomial_npmle(sizes, rng.binomial(sizes, p), np.ones(m))
                    with np.errstate(divide="ignore"):
                        err.append(float(fit.coverage(big_m)) - float(coverage_profile(-np.log(p), big_m)))
                rmse.append(float(np.sqrt(np.mean(np.square(err)))))
            lines.append(f"| {n} | {ratio:g} | " + " | ".join(f"{v:.3f}" for v in rmse) + " |")
    return "\n".join(lines)


def _fmt(value: float, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="the first three rows only")
    parser.add_argument("--resolution", action="store_true",
                        help="the NPMLE's RMSE by M/n instead (docs/verifier-coverage.md §7)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.resolution:
        print(resolution_table(args.reps, args.seed))
        what = "NPMLE point estimates"
    else:
        rows = TABLE_ROWS[:3] if args.quick else TABLE_ROWS
        print(TABLE_HEADER, flush=True)
        for name, n, big_m in rows:
            print(table_row(name, n, big_m, args.reps, args.seed), flush=True)
        what = "95% intervals"
    print(f"\n{args.reps} replications of m = {TABLE_PROMPTS} prompts per row, {what}, seed {args.seed}; "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

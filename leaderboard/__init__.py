"""The static leaderboard: ``covbench leaderboard build --results DIR --out DIR``.

Modules: ``board`` (per-task tables, ranks, τ), ``families`` (min-CE vs tournament picks),
``plots`` (matplotlib SVG), ``export`` (CSV/JSON downloads), ``render`` (Jinja2, autoescaped),
``build`` (the command), ``synthetic`` (synthetic stores for tests and benchmarks).
"""

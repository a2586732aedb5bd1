"""Root conftest: loads covbench's pytest plugin (options --model, --models-file, --results-dir)."""

pytest_plugins = ["covbench.plugin", "pytester"]

"""Entry points: ``python -m experiments.run`` and friends."""

"""Hydra configuration files (schema and typed defaults in ``sim/config.py``)."""

"""Calibration targets (``targets.csv``) and, later, moments and fitting."""

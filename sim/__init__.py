"""Simulation core: model and step order, city, state, kernels, RNG, indices, outputs."""

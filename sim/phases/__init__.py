"""The phases of the set-up and of one simulated year, one module each.

Each phase is a function ``phase(model) -> None``; ``sim.model.SETUP`` and ``sim.model.YEAR``
list them in order, and ``SegregationModel.step`` documents that order.
"""

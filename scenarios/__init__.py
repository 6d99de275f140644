"""Policy levers. ``scenarios.base.Lever`` is the uniform hook; one file per lever."""

"""Tracing real torch models into symbolic costs (the only code that imports torch)."""

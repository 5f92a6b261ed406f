"""The hardening tests: fuzzing, path properties, hostile input, faults, disconnects, trace context.

CI runs them bounded; `python -m tools.hardening` runs this folder at a larger scale for its report.
"""

"""Video -> arrays: listing, decoding (PyAV), time-based sampling, encoders and the extraction orchestrator.

This package never imports ``alex.heads``.
"""

"""Small generated datasets for tests, the demo and learning checks (written with PyAV)."""

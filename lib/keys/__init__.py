"""API keys: the key document, the per-instance cache of it, the stores it lives in, and the key CLI."""

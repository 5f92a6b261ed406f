"""The platform neutral gateway: everything but the platform adapters (handlers/) and main.py."""

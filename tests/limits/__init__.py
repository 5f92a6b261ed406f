"""Tests of lib/limits: pure parts as tables, and each store against a real server."""

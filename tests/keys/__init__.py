"""Tests of lib/keys/: the key cache, the stores, the CLI, and rotation on running gateways."""

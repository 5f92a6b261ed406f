"""Static checks of terraform/: house layout, wiring to the code, each stack, the gateway script."""

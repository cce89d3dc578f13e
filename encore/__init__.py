"""Encore's shell: settings, the CLI, the local stack, the player client and the simulator."""

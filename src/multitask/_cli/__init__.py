"""Command implementations for :mod:`multitask.cli`; light imports only."""

"""Test fixtures: pg."""

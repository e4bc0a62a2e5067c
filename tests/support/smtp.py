"""Test fixtures: smtp."""

"""Test fixtures: workbooks."""

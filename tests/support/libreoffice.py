"""Test fixtures: libreoffice."""

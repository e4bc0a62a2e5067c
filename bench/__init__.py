"""Benchmarks of Complaint Desk side by side with the tools a shop would otherwise use."""

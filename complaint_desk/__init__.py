"""The ``complaint-desk`` command: wires the core, the add-in, the sync daemon and the scheduler."""

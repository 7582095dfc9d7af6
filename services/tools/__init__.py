"""Tools around the system, kept apart from it: simulation, demo, faults, worker processes."""

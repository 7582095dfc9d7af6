"""Tools around the system, kept apart from it: simulation, demo, fault harness, worker processes."""

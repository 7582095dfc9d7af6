"""`shouwang demo`: the whole system on a synthetic county, from one command, with a report."""

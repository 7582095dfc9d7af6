"""`shouwang faults`: scenarios that break the system on purpose (poison, crashes, outages,
overload, broker loss) on a private stack, each checked to PASS or FAIL."""

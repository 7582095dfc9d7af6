"""Support: match at-risk households to measures from a capacity-limited catalogue."""

"""Support's pure domain: household profiles and the matcher."""

"""Audit: replay the log through monitoring's pure code, explain a household, archive the log."""

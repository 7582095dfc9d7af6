"""Monitoring: the household fold, risk rules and review workflow (pure), and its faust app."""

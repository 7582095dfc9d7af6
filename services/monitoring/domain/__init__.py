"""Monitoring's pure domain: events, state, fold, facts, rules, workflow, assess, policy."""

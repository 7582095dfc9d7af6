"""Shouwang (守望): keep watch over households at risk of falling back into poverty."""

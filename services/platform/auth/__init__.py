"""Bearer tokens and their scopes, shared by every HTTP surface."""

"""HTTP pieces every API shares: the problem+json error shape (RFC 9457), the docs page."""

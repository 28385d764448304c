"""The HTTP edge's abuse protection and security: rate limits, CORS, security headers, trusted hosts."""

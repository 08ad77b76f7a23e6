"""One router per resource, all under /api/v1 and behind the bearer token."""

"""The REST door (FastAPI): authenticated, versioned under /api/v1, errors as problem+json."""

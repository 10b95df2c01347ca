"""The job functions and the wire contract (names, JSON schemas, Redis keys and channels)."""

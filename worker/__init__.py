"""arq workers that run the calendar jobs taken from Redis."""

"""gantry's Django integration (the cache backend)."""

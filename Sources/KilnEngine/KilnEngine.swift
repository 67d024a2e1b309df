// KilnEngine: the first CPU engine.

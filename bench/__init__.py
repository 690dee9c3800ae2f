"""``make bench``: speed and memory figures of tinyreg, printed as a table and written as JSON."""

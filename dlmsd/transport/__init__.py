"""Transports: the only code, with the pollers, that does I/O and owns time."""

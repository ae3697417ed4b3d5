"""Data access: every query of the service, by the table it is about."""

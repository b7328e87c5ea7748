"""Ticketline domain package, shipped to every function as the `common` Lambda layer."""

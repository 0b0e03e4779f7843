"""Writes and side effects of the ratings app."""

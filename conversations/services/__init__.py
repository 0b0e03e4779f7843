"""Writes and side effects of the conversations app."""

"""Transcript import: readers (bytes to records), formats (records to conversations), writers."""

"""Signals other apps listen to, so that ratings does not import them."""

from django.dispatch import Signal

# New pairwise items were created in ``project_id`` (sent inside the creating transaction;
# receivers that start work should do so on commit). exports warms its text cache on it.
pairs_created = Signal()

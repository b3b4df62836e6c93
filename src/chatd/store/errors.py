"""What the store raises when the database refuses or fails, whichever backend it is.

    StoreError            any failure of a statement or a connection
    ├── IntegrityError    a constraint refused the change (unique, foreign key, check)
    └── Unavailable       the database could not be reached or stayed locked
"""

from __future__ import annotations


class StoreError(Exception):
    """A statement or a connection failed; the transaction it was part of was rolled back."""


class IntegrityError(StoreError):
    """A constraint refused the change."""


class Unavailable(StoreError):
    """The database could not be reached, the connection dropped, or a lock wait timed out."""

"""Telling citizens: messages rendered from their templates in the transaction that causes them, then sent."""

"""HTTP entry points: one blueprint per caller."""

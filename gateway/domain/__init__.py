"""Pure domain logic: no Flask, no SQL, no HTTP."""

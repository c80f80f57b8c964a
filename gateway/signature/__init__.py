"""PDF signature verification with pyHanko, against configured Vietnamese trust roots, in a sandbox."""

QUEUE = "signatures"
VERIFY_ATTACHMENT = "signature.verify_attachment"

"""The optional webhook push of the change feed to the one-stop software (Standard Webhooks signed)."""

"""Fee payments of level-4 services: asking for them, the providers' callbacks, the workers' INIT, QUERY and
receipt jobs, and settling a payment once, whoever reports it first."""

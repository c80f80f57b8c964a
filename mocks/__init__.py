"""Fake external systems (national portal, later payment/postal/sms) for tests and testers."""

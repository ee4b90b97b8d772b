"""Thin HTTP and websocket handlers: parse, check, hand over to services."""

"""Loopback emulators of the cloud transcription providers, for tests and local development."""

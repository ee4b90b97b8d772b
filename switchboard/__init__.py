"""Switchboard: Twilio media streams in, live, stored, dual-track transcripts out."""

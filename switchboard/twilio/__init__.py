"""Twilio protocol code, all pure and socket-free: the routes do the I/O.

- ``signature``: the URL Twilio signed, and X-Twilio-Signature validation and signing (webhooks, WS handshake).
- ``twiml``: the voice webhook's TwiML replies (``<Start><Stream>`` then ``<Dial>`` or a voicemail hold).
- ``media_stream``: the sans-I/O Media Streams parser (text frames → typed events) and outgoing frames.
- ``events``: those typed events, the parser's states and its stats.
- ``errors``: the one error tree (``TwilioError``).

Import from the submodules; this package imports nothing, so loading the parser does not load the
twilio library.
"""

"""The shape every provider error shares (transcription, voices): a message, ``retryable`` and the ``provider``.

``retryable`` tells a failover composite whether the same provider may serve again (a refused key will not; a
dropped socket may); ``None`` takes the subclass's ``default_retryable``. Each package keeps its own tree below
this base, so ``except TranscriptionError`` never catches a voice's failure.
"""


class ProviderError(Exception):
    """Base of :class:`~switchboard.transcribe.errors.TranscriptionError` and
    :class:`~switchboard.tts.errors.VoiceError`."""

    default_retryable: bool = False

    def __init__(self, message: str, retryable: bool | None = None, provider: str = "unknown") -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.retryable = self.default_retryable if retryable is None else retryable

    def __str__(self) -> str:
        return f"[{self.provider}] {self.message}"

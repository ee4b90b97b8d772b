"""The voice agent's brain: who speaks when (:mod:`.turns`, sans-I/O), what to say (the dialog: OpenAI with tools,
or the offline intake script), the agent profile, the answer-mode decision and usage accounting.

It never imports the call, the voices or the transcribers: the call feeds the core events and carries out its
actions (see :mod:`.events`).
"""

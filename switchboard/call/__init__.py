"""One call's parts: the session that wires them, the per-track pipeline, the stereo recorder and the registry of
live calls."""

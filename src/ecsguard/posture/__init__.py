"""Security posture: checks (pure functions of a Snapshot), the engine and the mutelist."""

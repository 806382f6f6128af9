"""Unit tests: one part of `app` at a time, no app and no server (marker `unit`)."""

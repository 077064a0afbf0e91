"""Tests of the log pipeline."""

"""Helpers of ``scripts/bench`` (issue 16): meters, frames, stacks, the daemon under test."""

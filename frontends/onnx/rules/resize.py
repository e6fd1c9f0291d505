"""Resize and Upsample as per-axis interpolation matrices computed at compile time."""

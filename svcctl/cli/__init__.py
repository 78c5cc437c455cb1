"""Thin click commands: parse, call analysis, render."""

"""Lua scripts, one per state change; each file documents its KEYS and ARGV."""

"""The command-line door: parse, call a service, render."""

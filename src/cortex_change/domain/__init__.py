"""The rules of change management as plain Python: no I/O, no clock, standard library only."""

"""Notification channels: each turns a Message into one delivery over a real protocol."""

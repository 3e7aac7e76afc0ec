"""The only place SQL lives: connection, migrations and repositories."""

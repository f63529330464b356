"""`dev8`: the Dev8 command line, a client of the HTTP API (it imports nothing of the app)."""

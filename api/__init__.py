"""The composition root: settings, sessions and clients wired into the HTTP API and the CLI.

Nothing imports ``api``; it imports everything else.
"""

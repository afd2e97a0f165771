"""The board's read-only web page, for neighbours without a radio (`meshboard web`).

A separate process beside the daemon, reading the same database: `pages` decides what a page
shows (only the rings the configuration puts on the web, never a private one), `app` serves it
with Flask and Jinja templates, and waitress (pure Python, a thread pool, limits on headers and
slow clients) listens. Nothing here writes to the database.
"""

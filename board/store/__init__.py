"""Everything the board keeps in SQLite.

`tables` holds every table model, `database` opens the engine with its pragmas and locking,
`schema` and `migrations` version the file, and one store per concern (`bulletins`,
`moderation`, `tools`, `outbox`, `shares`, `subscriptions`) reads and writes its tables.
"""

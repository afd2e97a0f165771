"""Board-to-board sync: the engine, its state, flood and acceptance rules, set reconciliation,
the Trickle timer and USB bundles.

Pure like the rest of `board/`: the node passes received payloads and the time in, and sends
what `SyncEngine.poll` returns. The bytes themselves are `board.wire`'s.
"""

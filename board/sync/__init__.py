"""Board-to-board sync: the wire codec, the Trickle timer and the engine that drives them.

Pure like the rest of `board/`: the node passes received payloads and the time in, and sends
what `SyncEngine.poll` returns.
"""

"""Every byte the board plane puts on air: the frame, sync keys, the codec, moderation and tools.

Sizes derive from one root (`frame.MAX_BOARD_PAYLOAD` and the header struct), never re-typed;
`docs/wire-format.md` describes each message.
"""

"""Every byte the board plane puts on air: sync keys, the codec, moderation and tool records.

Sizes are derived from one root (`codec.MAX_PAYLOAD` and the header structs), never re-typed;
`docs/wire-format.md` describes each message.
"""

"""The text grammar people use from a handheld: commands, paging and the features they reach.

Each module turns an `Inbound` text into replies and changes (`board.messages`), reading and
writing through `board.store`; none of them sends anything itself.
"""

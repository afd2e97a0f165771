"""`meshboard demo`: a simulated neighbourhood of real daemons, how a post spread, and its picture.

This is the only part of `node/` outside the tests that starts the simulator (`node.sim`); the
daemon side never imports it.
"""

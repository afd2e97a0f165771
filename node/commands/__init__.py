"""The `meshboard` commands, one module per job: node/cli.py names each command's module and
imports it only when that command runs, so each command loads only what it needs (the web
page neither the store nor the signing library, a board on a Pi never the simulator).
"""

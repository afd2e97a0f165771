"""`meshboard` commands kept out of node/cli.py, by subject: each loads its heavy parts (the
web stack, tomlkit) only for the commands that need them."""

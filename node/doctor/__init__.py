"""`meshboard doctor`: checks of the port, the radio, the clocks and the database.

`diagnose` runs them in order; each check returns `findings.Finding`s, a status with the command
that fixes it. Nothing here changes the radio or the database.
"""

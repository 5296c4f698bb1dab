"""The built-in commands, one module per area.

Each module defines plain click commands and groups; :mod:`sharetui.cli.main`
adds them to the root group in the order ``sharetui --help`` lists them. They
take what they share from :mod:`sharetui.cli.context`, never from ``main``.
"""

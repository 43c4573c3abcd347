"""gantry: the Python side of the gantry application server.

The server puts this package on sys.path itself; apps need no install step.
"""
__version__ = "0.1.0"

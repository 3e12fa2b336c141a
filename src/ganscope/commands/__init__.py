"""The command line's commands: the layer above every feature package.

One module per group of ``ganscope`` commands (their handlers, and for the grouped commands their
parsers too); :mod:`ganscope.cli` assembles the parser and maps each command to its handler.
Library code raises; these modules parse, call the library and print.
"""

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

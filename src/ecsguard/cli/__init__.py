"""One module per command group; each is thin: parse, call the library, render."""

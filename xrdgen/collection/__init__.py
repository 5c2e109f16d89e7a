"""Crystal collections: a directory of CIFs, CSV files with a CIF column, or the embedded default.

`records` lists unparsed structures cheaply, `entries` parses them (spglib's conventional cell,
space group, Wyckoff sites) and writes entry files, `reading` reads a whole collection chunk by
chunk, `embedded` finds the structures shipped inside installed packages, and `split` divides a
collection by structure type into a statistics part and a test part.
"""

"""Crystal collections: directories of CIFs or CSVs with a CIF column (plain or gzip), or the embedded structures.

`records` lists unparsed structures cheaply, `entries` parses them (spglib's conventional cell,
space group, Wyckoff sites) and writes entry files, `reading` reads a whole collection chunk by
chunk (repeated ids dropped on request), `cache` keeps a large read for the next build, `embedded`
finds the structures shipped inside installed packages, `split` divides a collection by structure
type into a statistics part and a test part, and `shipped` is the package's default statistics.
"""

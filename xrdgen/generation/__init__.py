"""Synthetic crystals drawn from the statistics of a crystal collection (Schopmans et al., Sec. 2.1).

One module per job (import from the module, nothing is re-exported here):

- `generator.py`: `Generator`, the public entry (space-group prior, then one of the two paths);
- `fast.py` / `reference.py`: the two interchangeable paths of the method's steps (Wyckoff
  occupation, lattice KDE, volume KDE, orbit expansion, spglib check) — fast arrays for the training
  stream, PyXtal objects as the executable specification;
- `retry.py`: the retry rule both paths share; `attempts.py`: what each attempt drew and how it ended;
- `wyckoff.py`: the Wyckoff positions of the 230 space groups as cached arrays;
- `randomize.py`: the randomized test crystals (a real crystal with its Wyckoff assignment kept and
  coordinates and/or lattice redrawn) and their ordered reference.
"""

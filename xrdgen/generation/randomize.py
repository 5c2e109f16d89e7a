"""Randomized test crystals (the method's supplementary S3) and the ordered reference they are compared with.

A randomized crystal is a real crystal with its Wyckoff assignment kept and its free coordinates
and/or its lattice redrawn from the statistics: if a classifier still recognises it, it has learned
the symmetry and not the particular structure. Both the reference and the randomized crystals are
ordered (occupancy 1 on every site), as the generator's crystals are, so the accuracy on the
reference set minus the accuracy on a randomized set is the effect of the redraw alone:

- `ordered_reference(crystal, collection)`: the test crystal with each site's majority species at
  occupancy 1, labelled again by spglib at `collection.symprec` (removing the disorder can raise
  the symmetry);
- `randomize(crystal, statistics, rng, collection, generation, coordinates, lattice)`: the
  redrawn crystal; pass it the ordered reference for the comparison above.

Tolerances come from the config: `collection.symprec` labels (as the collection labels its
entries), `generation.symprec` / `generation.angle_tolerance` check that a redrawn crystal kept its
space group (as the generator checks its own crystals).
"""

from __future__ import annotations

import numpy as np
import spglib
from pymatgen.core.periodic_table import Element

from xrdgen.config import CollectionConfig, GenerationConfig
from xrdgen.crystal import Crystal
from xrdgen.generation.fast import spglib_spacegroup
from xrdgen.generation.wyckoff import wyckoff_table
from xrdgen.geometry import element_volume, lattice_matrix

POSITION_DECIMALS = 5  # rows whose fractional coordinates agree to this many decimals share a site


def _sites(crystal: Crystal) -> list[list[int]]:
    """Rows of `crystal` grouped by position: a disordered site is several rows at one position."""
    keys = np.round(np.mod(crystal.frac_coords, 1.0), POSITION_DECIMALS) % 1.0
    site_rows: dict[tuple, list[int]] = {}
    for row, key in enumerate(map(tuple, keys)):
        site_rows.setdefault(key, []).append(row)
    return list(site_rows.values())


def ordered_reference(crystal: Crystal, collection: CollectionConfig) -> Crystal:
    """The crystal with one species per site (the largest occupancy, the first row on a tie) at occupancy 1.

    The label is spglib's space group of the ordered crystal at `collection.symprec`; ValueError when
    spglib finds none.
    """
    rows = [max(site, key=lambda r: (crystal.occupancies[r], -r)) for site in _sites(crystal)]
    frac, numbers = crystal.frac_coords[rows], crystal.numbers[rows]
    dataset = spglib.get_symmetry_dataset((crystal.lattice, frac, numbers), symprec=collection.symprec)
    if dataset is None:
        raise ValueError(f"spglib finds no space group for the ordered crystal at symprec {collection.symprec}")
    return Crystal(crystal.lattice, frac, numbers, np.ones(len(rows)), spacegroup=int(dataset.number))


def randomize(
    crystal: Crystal,
    statistics,
    rng: np.random.Generator,
    collection: CollectionConfig,
    generation: GenerationConfig,
    coordinates: bool = True,
    lattice: bool = False,
    max_tries: int = 20,
) -> Crystal:
    """The crystal with its Wyckoff assignment kept and coordinates and/or lattice (with volume) redrawn.

    1. spglib at `collection.symprec` (tightened by 10⁻² and 10⁻⁴ when spglib gives up on atoms
       closer than it) gives the conventional standard cell; a second pass on that cell gives each
       orbit's Wyckoff site ("4a") and its species (partial occupancies kept: each distinct species
       mix is one spglib type).
    2. `coordinates`: each orbit gets a new uniform point on its Wyckoff site (PyXtal's operation
       0), expanded with PyXtal's orbit operations (`wyckoff_table`), as the generator does.
    3. `lattice`: new unit-volume parameters from the lattice KDE of the crystal system, and a new
       volume V = f·V_atomic with the denseness factor f from the volume KDE at the cell's V_atomic
       (occupancy-weighted), at least n_sites·`min_density_volume_per_atom` and at most
       `max_volume` (a larger one is a failed try), as the generator does.
    4. Redraw (up to `max_tries`) until spglib at `generation.symprec` and
       `generation.angle_tolerance` finds the same space group; ValueError if never.
    The label is spglib's space group of the input at `collection.symprec`.
    """
    # Rows sharing a position form one site; its species mix is one spglib type.
    mixes: dict[tuple, int] = {}
    positions, types = [], []
    for rows in _sites(crystal):
        mix = tuple(sorted((int(crystal.numbers[r]), round(float(crystal.occupancies[r]), 4)) for r in rows))
        types.append(mixes.setdefault(mix, len(mixes) + 1))
        positions.append(crystal.frac_coords[rows[0]])
    species_of_type = {t: mix for mix, t in mixes.items()}
    cell = (crystal.lattice, np.array(positions), np.array(types))
    for tolerance in collection.symprec * np.array([1.0, 1e-2, 1e-4]):  # atoms closer than symprec make spglib give up
        dataset = spglib.get_symmetry_dataset(cell, symprec=tolerance)
        if dataset is not None:
            break
    else:
        raise ValueError("spglib finds no space group for this crystal")
    std = (dataset.std_lattice, dataset.std_positions, dataset.std_types)
    std_dataset = spglib.get_symmetry_dataset(std, symprec=tolerance)
    spacegroup = int(dataset.number)
    table = wyckoff_table(spacegroup)
    orbits = []  # (Wyckoff site index, type)
    for rep in np.unique(std_dataset.equivalent_atoms):
        multiplicity = int(np.sum(std_dataset.equivalent_atoms == rep))
        name = f"{multiplicity}{std_dataset.wyckoffs[rep]}".replace("alpha", "A").replace("α", "A")
        if name not in table.index:
            raise ValueError(f"Wyckoff site {name} is not one of space group {spacegroup}'s")
        orbits.append((table.index[name], int(std[2][rep])))

    std_lattice = np.asarray(std[0], dtype=np.float64)
    std_types = np.asarray(std[2])
    v_atomic = sum(
        occupancy * element_volume(Element.from_Z(z).symbol)[1]
        for kind in std_types
        for z, occupancy in species_of_type[int(kind)]
    )
    min_volume = len(std_types) * generation.min_density_volume_per_atom
    for _ in range(max_tries):
        new_lattice = std_lattice
        if lattice:
            volume = max(statistics.sample_denseness(spacegroup, v_atomic, rng) * v_atomic, min_volume)
            if volume > generation.max_volume:
                continue
            a, b, c, alpha, beta, gamma = statistics.sample_lattice_parameters(table.crystal_system, rng)
            s = np.cbrt(volume)
            new_lattice = lattice_matrix(a * s, b * s, c * s, alpha, beta, gamma)
        if coordinates:
            frac_list, type_list = [], []
            for site, kind in orbits:
                orbit = table.orbit(site, table.project(site, rng.random(3)))
                frac_list.append(orbit)
                type_list.append(np.full(len(orbit), kind))
            frac, kinds = np.concatenate(frac_list), np.concatenate(type_list)
        else:
            frac, kinds = np.asarray(std[1], dtype=np.float64), std_types
        if spglib_spacegroup(new_lattice, frac, kinds, generation.symprec, generation.angle_tolerance) == spacegroup:
            break
    else:
        raise ValueError(f"no randomized crystal kept space group {spacegroup} in {max_tries} tries")

    coords, numbers, occupancies = [], [], []
    for position, kind in zip(frac, kinds):
        for z, occupancy in species_of_type[int(kind)]:
            coords.append(position)
            numbers.append(z)
            occupancies.append(occupancy)
    return Crystal(new_lattice, np.array(coords), np.array(numbers), np.array(occupancies), spacegroup=spacegroup)

"""The crystal sections: reading a collection, its per-space-group statistics, generating crystals from them."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from xrdgen.config.base import _Section


class CollectionConfig(_Section):
    """Sanity limits when reading a crystal collection: entries outside are skipped and reported."""

    max_atoms: int = Field(1000, gt=0, description="atoms in the conventional cell")
    min_volume_per_atom: float = Field(1.0, gt=0.0, description="Å³; denser than this is absurd")
    max_volume_per_atom: float = Field(300.0, gt=0.0)
    symprec: float = Field(0.1, gt=0.0, description="spglib tolerance for the label we compute")
    chunk_size: int = Field(64, gt=0, description="CIFs per Ray task")
    id_column: Optional[str] = Field(
        None, description="deduplicate by this id (CSV column; a CIF file's name): the first record of each id is read"
    )


class StatisticsConfig(_Section):
    """Structure-type split and the per-space-group statistics (space-group prior, Wyckoff occupation, lattice and volume KDEs).

    `max_volume` and `max_atoms_asymmetric_unit` are also the generator's limits (the fields of the
    same name in `GenerationConfig` follow them): generated crystals beyond either are rejected, so
    the generator never leaves the range the statistics describe. Both sides count the asymmetric
    unit alike: one atom per occupied Wyckoff site, each species of a mixed site once
    (`xrdgen.statistics.build.asymmetric_unit_size`; a generated crystal is ordered and has one
    atom per drawn site). Older configs called this limit `max_wyckoff_sites`.
    """

    test_fraction: float = Field(0.3, gt=0.0, lt=1.0)
    min_count_per_spacegroup: int = Field(50, ge=1, description="original: 50 on the ICSD -> 145 classes")
    prototype_grouping: Literal["auto", "structure_type", "prototype"] = "auto"
    max_volume: float = Field(
        7000.0, gt=0.0, description="Å³, conventional cell; larger ones stay out of the statistics (original)"
    )
    max_atoms_asymmetric_unit: int = Field(
        100,
        gt=0,
        description="atoms in the asymmetric unit; more stay out of the statistics and the generator makes none (original)",
    )
    min_structures_per_class: int = Field(
        10,
        ge=1,
        description="ordered statistics-part structures a class needs for its own Wyckoff statistics (capped at min_count_per_spacegroup without metadata)",
    )
    min_structures_volume_kde: int = Field(
        20,
        ge=2,
        description="structures a space group needs for its own volume KDE; fewer: the pooled one (20: own beats pooled in held-out likelihood on mp26k from here on)",
    )


class GenerationConfig(_Section):
    """Synthetic crystal generation (space group, Wyckoff occupation, coordinates, lattice and volume draws, retry rule).

    The limits `max_volume` and `max_atoms_asymmetric_unit` are not set here: inside a `Config` they
    are the statistics' (one source of truth); a standalone section (tests, tools) may set them.
    """

    max_atoms_asymmetric_unit: int = Field(100, gt=0, description="in a Config: statistics.max_atoms_asymmetric_unit")
    max_volume: float = Field(7000.0, gt=0.0, description="Å³, conventional cell; in a Config: statistics.max_volume")
    tries_per_n_elements: int = Field(20, gt=0)
    max_collisions: int = Field(
        50,
        ge=0,
        description="Wyckoff occupation: redraws of an occupied site without freedom before the element's other sites are dropped (original: 50)",
    )
    min_density_volume_per_atom: float = Field(0.75, ge=0.0)
    symprec: float = Field(1e-8, gt=0.0, description="spglib check, as the original")
    angle_tolerance: float = Field(5.0, ge=-1.0)
    distance_check: bool = False
    min_distance: float = Field(0.8, gt=0.0, description="Å, only with distance_check")
    path: Literal["fast", "reference"] = "fast"
    check: Literal["fast", "spglib"] = Field(
        "fast",
        description="fast path's space-group check: our exact search for operations beyond the drawn group (spglib only "
        "where needed; same verdicts as spglib, benchmarks/bench_symmetry_check.py) or spglib on every draw",
    )
    max_attempts_per_crystal: int = Field(
        10_000, gt=0, description="give up (RuntimeError) when statistics and limits admit no crystal"
    )

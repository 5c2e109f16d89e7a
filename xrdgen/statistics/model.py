"""ICSD-style statistics that the synthetic generator samples from (Schopmans et al., Sec. 2.1 and
the method's supplementary S1): the sampling model and its file format.

What is stored, per space group of the *statistics part* of a collection (`build.py` says how):

1. the space-group prior over the class list (a label is the index into the ascending list);
   its counts are the statistics-part structures within the limits (partially occupied ones
   too), or the entries of a database's metadata (`metadata.py`) when one is given;
2. P(number of unique elements), P(element) — from the ordered structures, or from the metadata;
3. P(one element occupies k Wyckoff sites) and P(an occupied Wyckoff site is this one), from the
   ordered structures, Wyckoff sites named as pyxtal names them ("4a");
4. the volume KDE: the denseness factor f = V_cell / V_atomic conditioned on V_atomic (sum over
   the atoms of the conventional cell of 4/3·π·((r_cov + r_vdW)/2)^3), as statsmodels'
   `KDEMultivariateConditional` with Gaussian kernels and normal-reference bandwidths defines it,
   fitted per space group on that space group's (V_atomic, f) rows, or on all rows pooled for a
   space group with fewer than `min_structures_volume_kde` of them; sampled *exactly* (see
   `kde.sample_denseness`) instead of the original's bounded rejection sampler. The V_atomic
   limit of a space group is the largest V_atomic of the rows its KDE was fitted on (the
   generator rejects larger draws: the KDE says nothing beyond its data);

and, over the whole statistics part:

5. lattice parameters of the conventional standard cell scaled to unit volume, per crystal system,
   sampled from the lattice KDE: a Gaussian KDE with Scott's rule (scipy's `gaussian_kde` default).

File format (JSON, optionally gzip-compressed; no pickle because a statistics file may come from
someone else), version 2: ``{"format": "xrdgen-statistics", "version": 2, "spacegroups": [...],
"prior": {"225": 0.1, ...}, "per_spacegroup": {"225": {count, ordered_count, metadata_count,
n_elements_probs, element_probs, n_sites_per_element_probs, wyckoff_probs}}, "lattice_samples":
{"cubic": [[]...], "tetragonal": [[a, c], ...], ...}, "volume_samples": [[V_atomic, f], ...],
"volume_spacegroups": [225, ...] (space group of each volume row), "volume_bandwidth": [bw_f,
bw_V] (pooled), "volume_bandwidths": {"225": [bw_f, bw_V]} (space groups with their own KDE),
"provenance": {...}}``. Space-group keys are strings because JSON keys are.
Version 1 files (pooled volume KDE only, counts of ordered structures) are still read: every space
group then uses the pooled volume KDE.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np

from xrdgen.errors import UserError
from xrdgen.geometry import LATTICE_PARAMETER_NAMES, full_lattice_parameters, unit_volume_cell
from xrdgen.jsonio import read_json, write_json
from xrdgen.statistics.kde import MAX_REDRAWS, denseness_pdf, lattice_kde, sample_denseness
from xrdgen.statistics.summary import summarize

FORMAT_NAME = "xrdgen-statistics"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass
class SpaceGroupStatistics:
    """What the generator draws for one space group: number of elements, elements, Wyckoff occupations."""

    count: int  # statistics-part structures of this space group within the limits (partially occupied too)
    n_elements_probs: list[float]  # P(number of unique elements = i + 1)
    element_probs: dict[str, float]  # symbol -> probability an element is drawn (sums to 1)
    n_sites_per_element_probs: list[float]  # P(one element occupies k = i + 1 Wyckoff sites)
    wyckoff_probs: dict[str, float]  # pyxtal Wyckoff name ("4a") -> P(an occupied site is this one)
    ordered_count: Optional[int] = None  # ordered ones, behind the Wyckoff tables (None: all `count`)
    metadata_count: Optional[int] = None  # entries of the metadata (None: built without metadata)

    @property
    def ordered(self) -> int:
        """Ordered structures behind the Wyckoff tables."""
        return self.count if self.ordered_count is None else self.ordered_count

    @property
    def prior_count(self) -> int:
        """What the space-group prior counts: metadata entries when there are, else structures."""
        return self.count if self.metadata_count is None else self.metadata_count

    def to_json(self) -> dict:
        data = {
            "count": int(self.count),
            "n_elements_probs": [float(p) for p in self.n_elements_probs],
            "element_probs": {k: float(v) for k, v in self.element_probs.items()},
            "n_sites_per_element_probs": [float(p) for p in self.n_sites_per_element_probs],
            "wyckoff_probs": {k: float(v) for k, v in self.wyckoff_probs.items()},
        }
        for name in ("ordered_count", "metadata_count"):
            if getattr(self, name) is not None:
                data[name] = int(getattr(self, name))
        return data

    @classmethod
    def from_json(cls, data: dict) -> SpaceGroupStatistics:
        return cls(
            count=int(data["count"]),
            n_elements_probs=[float(p) for p in data["n_elements_probs"]],
            element_probs={str(k): float(v) for k, v in data["element_probs"].items()},
            n_sites_per_element_probs=[float(p) for p in data["n_sites_per_element_probs"]],
            wyckoff_probs={str(k): float(v) for k, v in data["wyckoff_probs"].items()},
            ordered_count=None if data.get("ordered_count") is None else int(data["ordered_count"]),
            metadata_count=None if data.get("metadata_count") is None else int(data["metadata_count"]),
        )


@dataclass
class Statistics:
    """Everything the generator samples from; see the module docstring for definitions and format."""

    spacegroups: list[int]  # class list, ascending; a label is the index into this list
    prior: dict[int, float]  # over the class list, sums to 1
    per_spacegroup: dict[int, SpaceGroupStatistics]
    lattice_samples: dict[str, np.ndarray]  # crystal system -> (n, d) unit-volume lattice parameters
    volume_samples: np.ndarray  # (n, 2): V_atomic [Å^3], denseness factor f = V_cell / V_atomic
    volume_bandwidth: tuple[float, float]  # normal-reference (bw_f, bw_V_atomic) of all rows pooled
    provenance: dict  # source, counts, skipped entries, date, config, class list and its reasons
    volume_spacegroups: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # (n,) or empty
    volume_bandwidths: dict[int, tuple[float, float]] = field(default_factory=dict)  # own volume KDEs
    version: int = FORMAT_VERSION
    _kde_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _volume_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # ----------------------------------------------------------------------------------- labels
    def label_of(self, spacegroup: int) -> int:
        """Class index of a space group (ValueError when it is not a class)."""
        return self.spacegroups.index(int(spacegroup))

    def restricted(self, classes: list[int]) -> Statistics:
        """The same statistics over the class list `classes` (all of them classes here), prior renormalised.

        For a comparison on one class list: statistics built by another rule (the ICSD metadata's)
        draw only the classes of the experiment, each as often relative to the others as before.
        """
        missing = sorted(set(classes) - set(self.spacegroups))
        if missing:
            raise ValueError(f"space groups {missing} are not classes of these statistics")
        keep = sorted(int(sg) for sg in classes)
        total = sum(self.prior[sg] for sg in keep)
        return replace(
            self,
            spacegroups=keep,
            prior={sg: self.prior[sg] / total for sg in keep},
            per_spacegroup={sg: self.per_spacegroup[sg] for sg in keep},
            provenance={**self.provenance, "restricted_to": keep},
        )

    def sample_spacegroup(self, rng: np.random.Generator) -> int:
        """A space group drawn from the prior."""
        probs = np.array([self.prior[sg] for sg in self.spacegroups])
        return int(self.spacegroups[rng.choice(len(self.spacegroups), p=probs / probs.sum())])

    # ---------------------------------------------------------------------------------- lattice
    def lattice_kde(self, system: str):
        """The lattice KDE (`kde.lattice_kde`) over the unit-volume parameters of `system`, cached.

        Cubic cells have no free parameter at unit volume, so there is no KDE for them.
        """
        if system in self._kde_cache:
            return self._kde_cache[system]
        if system not in LATTICE_PARAMETER_NAMES:
            raise ValueError(f"unknown crystal system {system!r}")
        if system == "cubic":
            raise ValueError("cubic cells have no free lattice parameter at unit volume")
        d = len(LATTICE_PARAMETER_NAMES[system])
        samples = np.asarray(self.lattice_samples.get(system, np.empty((0, d))), dtype=np.float64).reshape(-1, d)
        if len(samples) == 0:
            raise ValueError(f"{system}: no lattice samples in these statistics")
        kde = lattice_kde(samples)
        self._kde_cache[system] = kde
        return kde

    def sample_lattice_parameters(self, system: str, rng: np.random.Generator) -> tuple[float, ...]:
        """(a, b, c, alpha, beta, gamma) with angles in radians, of a cell of volume exactly 1.

        1. Draw the free parameters of `system` from its KDE (`lattice_kde`).
        2. Redraw when they describe no cell: a length <= 0, an angle outside (0, π), or
           triclinic angles that close no parallelepiped. (The original used the draw as it came.)
        3. Rescale the lengths so the volume is exactly 1 (a KDE draw is only close to 1); the
           generator then multiplies the lengths by V^(1/3).
        """
        if system == "cubic":
            return full_lattice_parameters("cubic", np.empty(0))
        kde = self.lattice_kde(system)
        for _ in range(MAX_REDRAWS):
            cell = unit_volume_cell(system, kde.resample(1, seed=rng)[:, 0])
            if cell is not None:
                return cell
        raise RuntimeError(f"{system}: no physical lattice in {MAX_REDRAWS} KDE draws")

    # ----------------------------------------------------------------------------------- volume
    def has_own_volume_kde(self, spacegroup: int) -> bool:
        """True when `spacegroup` has its own volume KDE, False when it uses the pooled one."""
        return int(spacegroup) in self.volume_bandwidths

    def volume_kde(self, spacegroup: int) -> tuple[np.ndarray, tuple[float, float], float]:
        """(V_atomic, f) rows, bandwidth (h_f, h_V) and V_atomic limit of the volume KDE of `spacegroup`.

        The space group's own rows and bandwidth when it has its own KDE, else all rows pooled;
        the limit is the largest V_atomic of those rows. Cached per space group.
        """
        spacegroup = int(spacegroup)
        key = spacegroup if spacegroup in self.volume_bandwidths else None
        if key not in self._volume_cache:
            if key is None:
                samples, bandwidth = self.volume_samples, tuple(self.volume_bandwidth)
            else:
                samples = self.volume_samples[np.asarray(self.volume_spacegroups) == key]
                bandwidth = tuple(self.volume_bandwidths[key])
            samples = np.ascontiguousarray(samples, dtype=np.float64)
            self._volume_cache[key] = (samples, bandwidth, float(samples[:, 0].max()))
        return self._volume_cache[key]

    def v_atomic_limit(self, spacegroup: int) -> float:
        """Largest V_atomic [Å³] of the data behind the volume KDE of `spacegroup` (larger draws are rejected)."""
        return self.volume_kde(spacegroup)[2]

    def sample_denseness(self, spacegroup: int, v_atomic: float, rng: np.random.Generator) -> float:
        """Denseness factor f drawn exactly from the volume KDE p(f | V_atomic) of `spacegroup` (`kde.sample_denseness`)."""
        samples, bandwidth, _ = self.volume_kde(spacegroup)
        return sample_denseness(samples, bandwidth, v_atomic, rng)

    def denseness_pdf(self, spacegroup: int, f: np.ndarray, v_atomic: float) -> np.ndarray:
        """The untruncated conditional density p(f | V_atomic) of `spacegroup` that `sample_denseness` draws from."""
        samples, bandwidth, _ = self.volume_kde(spacegroup)
        return denseness_pdf(samples, bandwidth, f, v_atomic)

    # -------------------------------------------------------------------------------- file I/O
    def to_json(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,  # what this writes, whatever version was read
            "spacegroups": [int(sg) for sg in self.spacegroups],
            "prior": {str(sg): float(p) for sg, p in self.prior.items()},
            "per_spacegroup": {str(sg): s.to_json() for sg, s in self.per_spacegroup.items()},
            "lattice_samples": {
                system: np.asarray(samples, dtype=np.float64).tolist() for system, samples in self.lattice_samples.items()
            },
            "volume_samples": np.asarray(self.volume_samples, dtype=np.float64).tolist(),
            "volume_spacegroups": np.asarray(self.volume_spacegroups, dtype=np.int64).tolist(),
            "volume_bandwidth": [float(b) for b in self.volume_bandwidth],
            "volume_bandwidths": {str(sg): [float(b) for b in bw] for sg, bw in sorted(self.volume_bandwidths.items())},
            "provenance": _jsonable(self.provenance),
        }

    @classmethod
    def from_json(cls, data: Any, source: str = "statistics") -> Statistics:
        """Validate and build; any problem is one `UserError` line naming `source`."""
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise UserError(f'{source}: not an xrdgen statistics file (missing "format": "{FORMAT_NAME}")')
        version = data.get("version")
        if version not in READABLE_VERSIONS:
            raise UserError(
                f"{source}: statistics format version {version!r}; this xrdgen reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))} (rebuild it with `xrdgen stats build`)"
            )
        try:
            lattice_samples = {}
            for system, rows in data["lattice_samples"].items():
                if system not in LATTICE_PARAMETER_NAMES:
                    raise ValueError(f"unknown crystal system {system!r}")
                d = len(LATTICE_PARAMETER_NAMES[system])
                lattice_samples[system] = np.asarray(rows, dtype=np.float64).reshape(len(rows), d)
            volume_samples = np.asarray(data["volume_samples"], dtype=np.float64).reshape(-1, 2)
            stats = cls(
                spacegroups=[int(sg) for sg in data["spacegroups"]],
                prior={int(sg): float(p) for sg, p in data["prior"].items()},
                per_spacegroup={int(sg): SpaceGroupStatistics.from_json(s) for sg, s in data["per_spacegroup"].items()},
                lattice_samples=lattice_samples,
                volume_samples=volume_samples,
                volume_bandwidth=tuple(float(b) for b in data["volume_bandwidth"]),
                provenance=dict(data.get("provenance", {})),
                volume_spacegroups=np.asarray(data.get("volume_spacegroups", []), dtype=np.int64).reshape(-1),
                volume_bandwidths={int(sg): tuple(float(b) for b in bw) for sg, bw in data.get("volume_bandwidths", {}).items()},
                version=int(version),
            )
        except (KeyError, TypeError, ValueError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise UserError(f"{source}: malformed statistics file: {what}") from None
        problem = stats.check()
        if problem:
            raise UserError(f"{source}: inconsistent statistics: {problem}")
        return stats

    def check(self) -> Optional[str]:
        """The first inconsistency found, or None."""
        if self.spacegroups != sorted(set(self.spacegroups)):
            return "spacegroups must be ascending and unique"
        if set(self.prior) != set(self.spacegroups):
            return "prior must cover exactly the class list"
        if self.spacegroups and abs(sum(self.prior.values()) - 1.0) > 1e-6:
            return "prior must sum to 1"
        missing = set(self.spacegroups) - set(self.per_spacegroup)
        if missing:
            return f"no per-space-group statistics for {sorted(missing)[:5]}"
        if len(self.volume_bandwidth) != 2 or min(self.volume_bandwidth) <= 0:
            return "volume_bandwidth must be two positive numbers"
        if len(self.volume_samples) == 0:
            return "no volume samples"
        if self.volume_bandwidths and len(self.volume_spacegroups) != len(self.volume_samples):
            return "volume_spacegroups must name the space group of every volume sample"
        for sg, bw in self.volume_bandwidths.items():
            if len(bw) != 2 or min(bw) <= 0:
                return f"volume_bandwidths of {sg} must be two positive numbers"
            if not np.any(np.asarray(self.volume_spacegroups) == sg):
                return f"space group {sg} has its own volume KDE but no volume samples"
        return None

    def save(self, path: Path | str) -> Path:
        """Write JSON; gzip-compressed when the name ends in .gz."""
        return write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path | str) -> Statistics:
        data = read_json(path, "statistics")
        return cls.from_json(data, source=str(path))

    # ---------------------------------------------------------------------------------- summary
    def summary(self, top: int = 10) -> str:
        """A readable overview (`summary.summarize`): sources, counts, class list, KDEs."""
        return summarize(self, top)


def _jsonable(value: Any) -> Any:
    """Provenance to plain JSON types (numpy scalars and Paths included)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value

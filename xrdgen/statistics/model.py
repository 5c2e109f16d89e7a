"""ICSD-style statistics that the synthetic generator samples from (Schopf et al., Sec. 2.1 and
the method's supplementary S1): the sampling model and its file format.

What is stored, per space group of the *statistics part* of a collection:

1. the prior P(space group) over the class list (space groups with at least
   `min_count_per_spacegroup` structures; a label is the index into that ascending list);
2. P(number of unique elements), P(element), P(one element occupies k Wyckoff sites) and
   P(an occupied Wyckoff site is this one), Wyckoff sites named as pyxtal names them ("4a");

and, over the whole statistics part:

3. lattice parameters of the conventional standard cell scaled to unit volume, per crystal system,
   sampled from the lattice KDE: a Gaussian KDE with Scott's rule (scipy's `gaussian_kde` default);
4. the volume KDE: the denseness factor f = V_cell / V_atomic conditioned on V_atomic (sum over the atoms of the
   conventional cell of 4/3·π·((r_cov + r_vdW)/2)^3): statsmodels' `KDEMultivariateConditional`
   with Gaussian kernels and normal-reference bandwidths, sampled *exactly* (see
   `kde.sample_denseness`) instead of the original's bounded rejection sampler.

How the statistics are built from a collection is in `build.py`, the KDEs in `kde.py`.

File format (JSON, optionally gzip-compressed; no pickle because a statistics file may come from
someone else): ``{"format": "xrdgen-statistics", "version": 1, "spacegroups": [...], "prior":
{"225": 0.1, ...}, "per_spacegroup": {"225": {count, n_elements_probs, element_probs,
n_sites_per_element_probs, wyckoff_probs}}, "lattice_samples": {"cubic": [[]...], "tetragonal":
[[a, c], ...], ...}, "volume_samples": [[V_atomic, f], ...], "volume_bandwidth": [bw_f, bw_V],
"provenance": {...}}``. Space-group keys are strings because JSON keys are.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from xrdgen.errors import UserError
from xrdgen.geometry import CRYSTAL_SYSTEMS, LATTICE_PARAMETER_NAMES, crystal_system, full_lattice_parameters, unit_volume_cell
from xrdgen.jsonio import read_json, write_json
from xrdgen.statistics.kde import MAX_REDRAWS, denseness_pdf, lattice_kde, sample_denseness

FORMAT_NAME = "xrdgen-statistics"
FORMAT_VERSION = 1


@dataclass
class SpaceGroupStatistics:
    """What the generator draws for one space group: number of elements, elements, Wyckoff occupations."""

    count: int  # statistics-part structures of this space group
    n_elements_probs: list[float]  # P(number of unique elements = i + 1)
    element_probs: dict[str, float]  # symbol -> probability an element is drawn (sums to 1)
    n_sites_per_element_probs: list[float]  # P(one element occupies k = i + 1 Wyckoff sites)
    wyckoff_probs: dict[str, float]  # pyxtal Wyckoff name ("4a") -> P(an occupied site is this one)

    def to_json(self) -> dict:
        return {
            "count": int(self.count),
            "n_elements_probs": [float(p) for p in self.n_elements_probs],
            "element_probs": {k: float(v) for k, v in self.element_probs.items()},
            "n_sites_per_element_probs": [float(p) for p in self.n_sites_per_element_probs],
            "wyckoff_probs": {k: float(v) for k, v in self.wyckoff_probs.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> SpaceGroupStatistics:
        return cls(
            count=int(data["count"]),
            n_elements_probs=[float(p) for p in data["n_elements_probs"]],
            element_probs={str(k): float(v) for k, v in data["element_probs"].items()},
            n_sites_per_element_probs=[float(p) for p in data["n_sites_per_element_probs"]],
            wyckoff_probs={str(k): float(v) for k, v in data["wyckoff_probs"].items()},
        )


@dataclass
class Statistics:
    """Everything the generator samples from; see the module docstring for definitions and format."""

    spacegroups: list[int]  # class list, ascending; a label is the index into this list
    prior: dict[int, float]  # over the class list, sums to 1
    per_spacegroup: dict[int, SpaceGroupStatistics]
    lattice_samples: dict[str, np.ndarray]  # crystal system -> (n, d) unit-volume lattice parameters
    volume_samples: np.ndarray  # (n, 2): V_atomic [Å^3], denseness factor f = V_cell / V_atomic
    volume_bandwidth: tuple[float, float]  # normal-reference (bw_f, bw_V_atomic)
    provenance: dict  # source, counts, skipped entries, date, config
    version: int = FORMAT_VERSION
    _kde_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # ----------------------------------------------------------------------------------- labels
    def label_of(self, spacegroup: int) -> int:
        """Class index of a space group (ValueError when it is not a class)."""
        return self.spacegroups.index(int(spacegroup))

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
    def sample_denseness(self, v_atomic: float, rng: np.random.Generator) -> float:
        """Denseness factor f drawn exactly from the volume KDE p(f | V_atomic) (`kde.sample_denseness`)."""
        return sample_denseness(self.volume_samples, self.volume_bandwidth, v_atomic, rng)

    def denseness_pdf(self, f: np.ndarray, v_atomic: float) -> np.ndarray:
        """The untruncated conditional density p(f | V_atomic) that `sample_denseness` draws from."""
        return denseness_pdf(self.volume_samples, self.volume_bandwidth, f, v_atomic)

    # -------------------------------------------------------------------------------- file I/O
    def to_json(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "version": int(self.version),
            "spacegroups": [int(sg) for sg in self.spacegroups],
            "prior": {str(sg): float(p) for sg, p in self.prior.items()},
            "per_spacegroup": {str(sg): s.to_json() for sg, s in self.per_spacegroup.items()},
            "lattice_samples": {
                system: np.asarray(samples, dtype=np.float64).tolist() for system, samples in self.lattice_samples.items()
            },
            "volume_samples": np.asarray(self.volume_samples, dtype=np.float64).tolist(),
            "volume_bandwidth": [float(b) for b in self.volume_bandwidth],
            "provenance": _jsonable(self.provenance),
        }

    @classmethod
    def from_json(cls, data: Any, source: str = "statistics") -> Statistics:
        """Validate and build; any problem is one `UserError` line naming `source`."""
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise UserError(f"{source}: not an xrdgen statistics file (missing \"format\": \"{FORMAT_NAME}\")")
        version = data.get("version")
        if version != FORMAT_VERSION:
            raise UserError(f"{source}: statistics format version {version!r}; this xrdgen reads version {FORMAT_VERSION}")
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
        """A readable overview: source, counts, the most frequent classes, lattice/volume samples."""
        prov = self.provenance
        lines = [
            f"xrdgen statistics (format version {self.version})",
            f"  source: {prov.get('source', '?')}   built: {prov.get('date', '?')}",
        ]
        counts = prov.get("counts", {})
        if counts:
            lines.append("  counts: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        lines.append(
            f"  classes: {len(self.spacegroups)} space groups with >= {prov.get('min_count_per_spacegroup', '?')} "
            f"statistics structures ({sum(self.per_spacegroup[sg].count for sg in self.spacegroups)} structures in classes)"
        )
        ranked = sorted(self.spacegroups, key=lambda sg: -self.prior[sg])[:top]
        if ranked:
            lines.append("  most frequent: " + ", ".join(f"{sg} ({self.prior[sg]:.1%})" for sg in ranked))
            by_system = Counter(crystal_system(sg) for sg in self.spacegroups)
            lines.append("  classes per system: " + ", ".join(f"{s}={by_system[s]}" for s, _, _ in CRYSTAL_SYSTEMS))
        lines.append(
            "  lattice samples (unit volume): "
            + ", ".join(f"{system}={len(samples)}" for system, samples in self.lattice_samples.items())
        )
        v = self.volume_samples
        if len(v):
            lines.append(
                f"  volume samples: {len(v)}; V_atomic {v[:, 0].min():.0f}..{v[:, 0].max():.0f} Å³, "
                f"denseness f median {np.median(v[:, 1]):.3f} (bandwidths f={self.volume_bandwidth[0]:.4f}, "
                f"V_atomic={self.volume_bandwidth[1]:.1f} Å³)"
            )
        skipped = prov.get("skipped_total")
        if skipped is not None:
            lines.append(f"  skipped while reading: {skipped}")
        return "\n".join(lines)


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

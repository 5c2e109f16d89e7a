"""ICSD-style statistics that the synthetic generator samples from (seed S1; Schopf et al., Sec. 2.1).

What is stored, per space group of the *statistics part* of a collection:

1. the prior P(space group) over the class list (space groups with at least
   `min_count_per_spacegroup` structures; a label is the index into that ascending list);
2. P(number of unique elements), P(element), P(one element occupies k Wyckoff sites) and
   P(an occupied Wyckoff site is this one), Wyckoff sites named as pyxtal names them ("4a");

and, over the whole statistics part:

3. lattice parameters of the conventional standard cell scaled to unit volume, per crystal system,
   sampled from a Gaussian KDE with Scott's rule (scipy's `gaussian_kde` default);
4. the denseness factor f = V_cell / V_atomic conditioned on V_atomic (sum over the atoms of the
   conventional cell of 4/3·π·((r_cov + r_vdW)/2)^3): statsmodels' `KDEMultivariateConditional`
   with Gaussian kernels and normal-reference bandwidths, sampled *exactly* (see `sample_denseness`)
   instead of the original's bounded rejection sampler.

File format (JSON, optionally gzip-compressed; no pickle because a statistics file may come from
someone else): ``{"format": "xrdgen-statistics", "version": 1, "spacegroups": [...], "prior":
{"225": 0.1, ...}, "per_spacegroup": {"225": {count, n_elements_probs, element_probs,
n_sites_per_element_probs, wyckoff_probs}}, "lattice_samples": {"cubic": [[]...], "tetragonal":
[[a, c], ...], ...}, "volume_samples": [[V_atomic, f], ...], "volume_bandwidth": [bw_f, bw_V],
"provenance": {...}}``. Space-group keys are strings because JSON keys are.
"""

from __future__ import annotations

import datetime
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from xrdgen.errors import UserError
from xrdgen.jsonio import read_json, write_json

FORMAT_NAME = "xrdgen-statistics"
FORMAT_VERSION = 1

# Crystal system of each space-group number range (International Tables, Vol. A).
CRYSTAL_SYSTEMS = (
    ("triclinic", 1, 2),
    ("monoclinic", 3, 15),
    ("orthorhombic", 16, 74),
    ("tetragonal", 75, 142),
    ("trigonal", 143, 167),
    ("hexagonal", 168, 194),
    ("cubic", 195, 230),
)

# The free lattice parameters of each system (conventional standard cell, hexagonal axes for
# trigonal groups). These are the columns of `Statistics.lattice_samples[system]`.
LATTICE_PARAMETER_NAMES = {
    "cubic": (),
    "hexagonal": ("a", "c"),
    "trigonal": ("a", "c"),
    "tetragonal": ("a", "c"),
    "orthorhombic": ("a", "b", "c"),
    "monoclinic": ("a", "b", "c", "beta"),
    "triclinic": ("a", "b", "c", "alpha", "beta", "gamma"),
}

# Redraws before a sampler gives up (a KDE with almost no mass in the physical region).
_MAX_REDRAWS = 10_000


def crystal_system(spacegroup: int) -> str:
    """Crystal system of a space-group number 1..230."""
    for name, lo, hi in CRYSTAL_SYSTEMS:
        if lo <= spacegroup <= hi:
            return name
    raise ValueError(f"space group {spacegroup} is not in 1..230")


def full_lattice_parameters(system: str, free: np.ndarray) -> tuple[float, ...]:
    """(a, b, c, alpha, beta, gamma) in radians from a system's free parameters."""
    right = np.pi / 2
    if system == "cubic":
        return (1.0, 1.0, 1.0, right, right, right)
    if system in ("hexagonal", "trigonal"):
        a, c = free
        return (a, a, c, right, right, 2 * np.pi / 3)
    if system == "tetragonal":
        a, c = free
        return (a, a, c, right, right, right)
    if system == "orthorhombic":
        a, b, c = free
        return (a, b, c, right, right, right)
    if system == "monoclinic":
        a, b, c, beta = free
        return (a, b, c, right, beta, right)
    if system == "triclinic":
        return tuple(free)
    raise ValueError(f"unknown crystal system {system!r}")


def unit_volume_cell(system: str, free: np.ndarray) -> Optional[tuple[float, ...]]:
    """Free KDE parameters of `system` -> (a, b, c, alpha, beta, gamma) of volume exactly 1, or None.

    None when the draw describes no cell: a length <= 0, an angle outside (0, π), or triclinic
    angles that close no parallelepiped (the original used such draws as they came). The lengths
    are rescaled because a KDE draw only has a volume close to 1.
    """
    a, b, c, alpha, beta, gamma = full_lattice_parameters(system, free)
    if min(a, b, c) <= 0 or not all(0 < angle < np.pi for angle in (alpha, beta, gamma)):
        return None
    volume = cell_volume(a, b, c, alpha, beta, gamma)
    if not np.isfinite(volume) or volume <= 0:
        return None
    scale = volume ** (-1.0 / 3.0)
    return (float(a * scale), float(b * scale), float(c * scale), float(alpha), float(beta), float(gamma))


def cell_volume(a: float, b: float, c: float, alpha: float, beta: float, gamma: float) -> float:
    """Cell volume from lengths and angles (radians); NaN when the angles close no cell."""
    ca, cb, cg = np.cos(alpha), np.cos(beta), np.cos(gamma)
    radicand = 1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg
    return float(a * b * c * np.sqrt(radicand)) if radicand > 0 else float("nan")


def unit_volume_parameters(system: str, lattice_parameters: Iterable[float]) -> np.ndarray:
    """Free parameters of `system` of a cell scaled to unit volume (lengths / V^(1/3); angles kept).

    `lattice_parameters` is (a, b, c, alpha, beta, gamma) with angles in radians, of the
    conventional standard cell.
    """
    a, b, c, alpha, beta, gamma = (float(x) for x in lattice_parameters)
    scale = cell_volume(a, b, c, alpha, beta, gamma) ** (1.0 / 3.0)
    a, b, c = a / scale, b / scale, c / scale
    full = {"a": a, "b": b, "c": c, "alpha": alpha, "beta": beta, "gamma": gamma}
    return np.array([full[name] for name in LATTICE_PARAMETER_NAMES[system]], dtype=np.float64)


@dataclass
class SpaceGroupStatistics:
    """What the generator draws for one space group (seed S1 steps 2-5)."""

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
    def from_json(cls, data: dict) -> "SpaceGroupStatistics":
        return cls(
            count=int(data["count"]),
            n_elements_probs=[float(p) for p in data["n_elements_probs"]],
            element_probs={str(k): float(v) for k, v in data["element_probs"].items()},
            n_sites_per_element_probs=[float(p) for p in data["n_sites_per_element_probs"]],
            wyckoff_probs={str(k): float(v) for k, v in data["wyckoff_probs"].items()},
        )


class DiagonalGaussianKDE:
    """Fallback KDE for too few or degenerate samples: independent Gaussians around each sample.

    Bandwidth per column = Scott's factor n^(-1/(d+4)) × the column's standard deviation, or 5% of
    the column's mean magnitude where the samples do not vary. Same `resample(size, seed)` and
    `evaluate(points)` interface as scipy's `gaussian_kde`.
    """

    def __init__(self, samples: np.ndarray):
        self.dataset = np.asarray(samples, dtype=np.float64).T  # (d, n) like gaussian_kde
        d, n = self.dataset.shape
        std = self.dataset.std(axis=1)
        fallback = 0.05 * np.maximum(np.abs(self.dataset).mean(axis=1), 1e-3)
        self.bandwidth = np.where(std > 0, std * n ** (-1.0 / (d + 4)), fallback)

    def resample(self, size: int = 1, seed=None) -> np.ndarray:
        rng = np.random.default_rng(seed) if not isinstance(seed, np.random.Generator) else seed
        picks = rng.integers(self.dataset.shape[1], size=size)
        return self.dataset[:, picks] + self.bandwidth[:, None] * rng.standard_normal((self.dataset.shape[0], size))

    def evaluate(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64).reshape(self.dataset.shape[0], -1)
        z = (points[:, :, None] - self.dataset[:, None, :]) / self.bandwidth[:, None, None]
        norm = np.prod(np.sqrt(2 * np.pi) * self.bandwidth)
        return np.exp(-0.5 * (z * z).sum(axis=0)).mean(axis=1) / norm

    __call__ = evaluate


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
        """scipy `gaussian_kde` (Scott's rule) over the unit-volume parameters of `system`, cached.

        With fewer than d + 2 samples, or samples whose covariance is singular (a full-covariance
        KDE is then undefined), a `DiagonalGaussianKDE` stands in. Cubic cells have no free
        parameter at unit volume, so there is no KDE for them.
        """
        if system in self._kde_cache:
            return self._kde_cache[system]
        from scipy.stats import gaussian_kde

        if system not in LATTICE_PARAMETER_NAMES:
            raise ValueError(f"unknown crystal system {system!r}")
        if system == "cubic":
            raise ValueError("cubic cells have no free lattice parameter at unit volume")
        d = len(LATTICE_PARAMETER_NAMES[system])
        samples = np.asarray(self.lattice_samples.get(system, np.empty((0, d))), dtype=np.float64).reshape(-1, d)
        if len(samples) == 0:
            raise ValueError(f"{system}: no lattice samples in these statistics")
        kde = None
        if len(samples) >= d + 2:
            try:
                kde = gaussian_kde(samples.T, bw_method="scott")
            except np.linalg.LinAlgError:
                kde = None
        if kde is None:
            kde = DiagonalGaussianKDE(samples)
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
        for _ in range(_MAX_REDRAWS):
            cell = unit_volume_cell(system, kde.resample(1, seed=rng)[:, 0])
            if cell is not None:
                return cell
        raise RuntimeError(f"{system}: no physical lattice in {_MAX_REDRAWS} KDE draws")

    # ----------------------------------------------------------------------------------- volume
    def sample_denseness(self, v_atomic: float, rng: np.random.Generator) -> float:
        """Denseness factor f drawn exactly from statsmodels' conditional KDE p(f | V_atomic).

        With Gaussian kernels K_h, the conditional density is a mixture:
            p(f | V) = Σ_i K_hV(V - V_i) K_hf(f - f_i) / Σ_i K_hV(V - V_i),
        so a draw is (1) pick sample i with weight K_hV(V - V_i), (2) f = f_i + h_f · N(0, 1).
        Draws with f <= 0 are redrawn (the density is truncated to f > 0). Weights are computed
        relative to the largest, so a V_atomic far outside the data still picks its nearest
        samples instead of dividing 0 by 0 as statsmodels' pdf would.
        """
        bw_f, bw_v = self.volume_bandwidth
        v_samples = self.volume_samples[:, 0]
        f_samples = self.volume_samples[:, 1]
        z = (float(v_atomic) - v_samples) / bw_v
        log_w = -0.5 * z * z
        weights = np.exp(log_w - log_w.max())
        cdf = np.cumsum(weights)
        for _ in range(_MAX_REDRAWS):
            i = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
            i = min(i, len(cdf) - 1)
            f = f_samples[i] + bw_f * rng.standard_normal()
            if f > 0:
                return float(f)
        raise RuntimeError(f"no positive denseness factor in {_MAX_REDRAWS} draws at V_atomic={v_atomic}")

    def denseness_pdf(self, f: np.ndarray, v_atomic: float) -> np.ndarray:
        """The untruncated conditional density p(f | V_atomic) that `sample_denseness` draws from."""
        bw_f, bw_v = self.volume_bandwidth
        z = (float(v_atomic) - self.volume_samples[:, 0]) / bw_v
        log_w = -0.5 * z * z
        weights = np.exp(log_w - log_w.max())
        weights /= weights.sum()
        f = np.atleast_1d(np.asarray(f, dtype=np.float64))
        u = (f[:, None] - self.volume_samples[None, :, 1]) / bw_f
        return (np.exp(-0.5 * u * u) / (np.sqrt(2 * np.pi) * bw_f)) @ weights

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
    def from_json(cls, data: Any, source: str = "statistics") -> "Statistics":
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
    def load(cls, path: Path | str) -> "Statistics":
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
            lines.append(f"  most frequent: " + ", ".join(f"{sg} ({self.prior[sg]:.1%})" for sg in ranked))
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


def normal_reference_bandwidth(data: np.ndarray) -> np.ndarray:
    """statsmodels' normal-reference rule: 1.06 · std · n^(-1/(4+q)) per column, q = number of columns."""
    data = np.asarray(data, dtype=np.float64)
    n, q = data.shape
    return 1.06 * data.std(axis=0) * n ** (-1.0 / (4 + q))


# ----------------------------------------------------------------------------------- building
def atomic_volume(symbols: Iterable[str]) -> float:
    """V_atomic = Σ over atoms of 4/3·π·((r_cov + r_vdW)/2)^3 with pyxtal's element radii (as the original)."""
    from pyxtal.database.element import Element

    total = 0.0
    for symbol in symbols:
        element = Element(symbol)
        if element.covalent_radius is None or element.vdw_radius is None:
            raise ValueError(f"no covalent/van der Waals radius for {symbol}")
        r = (element.covalent_radius + element.vdw_radius) / 2.0
        total += 4.0 / 3.0 * np.pi * r**3
    return total


def lattice_parameters(lattice: np.ndarray) -> tuple[float, ...]:
    """(a, b, c, alpha, beta, gamma), angles in radians, of lattice rows a, b, c."""
    lattice = np.asarray(lattice, dtype=np.float64)
    a, b, c = np.linalg.norm(lattice, axis=1)
    alpha = np.arccos(np.clip(lattice[1] @ lattice[2] / (b * c), -1, 1))
    beta = np.arccos(np.clip(lattice[0] @ lattice[2] / (a * c), -1, 1))
    gamma = np.arccos(np.clip(lattice[0] @ lattice[1] / (a * b), -1, 1))
    return (float(a), float(b), float(c), float(alpha), float(beta), float(gamma))


def _probabilities_from_counts(values: list[int]) -> list[float]:
    """P(value = i + 1) for i = 0..max-1 (the original's bincount[1:] normalised)."""
    counts = np.bincount(np.asarray(values, dtype=np.int64))[1:]
    return (counts / counts.sum()).tolist() if counts.sum() else []


def _normalised(counter: Counter) -> dict[str, float]:
    total = sum(counter.values())
    return {key: value / total for key, value in sorted(counter.items())} if total else {}


def build_statistics(entries: Sequence, config=None, provenance: Optional[dict] = None) -> Statistics:
    """Statistics of the statistics part (seed S1, defined as in Schopf et al.'s dataset preparation).

    Which entries count: ordered ones only (a partially occupied site has no single element to
    count; the original lost them the same way, through pyxtal), with a conventional cell of at most
    `max_volume` Å³ and at most `max_wyckoff_sites` occupied Wyckoff sites. Excluded ones are
    counted in the provenance.

    Per structure (entry.wyckoff_sites: one (element, Wyckoff name) per occupied orbit):
    1. unique elements E; number of unique elements |E| -> n_elements_probs;
    2. each e in E counts once for element_probs (P(element) ∝ structures containing it);
    3. number of Wyckoff sites occupied by each e in E, pooled -> n_sites_per_element_probs;
    4. every occupied Wyckoff name counts once -> wyckoff_probs;
    5. unit-volume lattice parameters of the conventional cell, per crystal system, all space
       groups pooled (the lattice KDE is per system, not per space group);
    6. (V_atomic, f = V_cell / V_atomic), all space groups pooled, with normal-reference
       bandwidths (the original fitted per space group with fixed bandwidths; pooled data keeps the
       KDE usable for rare space groups).
    The class list is the space groups with at least `min_count_per_spacegroup` counted
    structures; the prior is their relative frequency.
    """
    from xrdgen.config import Config, StatisticsConfig

    if isinstance(config, Config):
        config = config.statistics
    config = config or StatisticsConfig()

    excluded = Counter()
    per_sg_elements_count: dict[int, list[int]] = defaultdict(list)
    per_sg_element_counter: dict[int, Counter] = defaultdict(Counter)
    per_sg_repetitions: dict[int, list[int]] = defaultdict(list)
    per_sg_wyckoff_counter: dict[int, Counter] = defaultdict(Counter)
    per_sg_count: Counter = Counter()
    lattice_rows: dict[str, list[np.ndarray]] = defaultdict(list)
    volume_rows: list[tuple[float, float]] = []

    for entry in entries:
        if not entry.ordered:
            excluded["partially occupied"] += 1
            continue
        crystal = entry.crystal
        if crystal.volume > config.max_volume:
            excluded[f"conventional cell above max_volume"] += 1
            continue
        sites = entry.wyckoff_sites
        if not sites:
            excluded["no Wyckoff sites"] += 1
            continue
        if len(sites) > config.max_wyckoff_sites:
            excluded["more Wyckoff sites than max_wyckoff_sites"] += 1
            continue
        from pymatgen.core.periodic_table import Element

        symbols = [Element.from_Z(int(z)).symbol for z in crystal.numbers]
        try:
            v_atomic = atomic_volume(symbols)
        except ValueError:
            excluded["element without radii"] += 1
            continue

        sg = int(entry.spacegroup)
        per_sg_count[sg] += 1
        elements = [element for element, _ in sites]
        unique = sorted(set(elements))
        per_sg_elements_count[sg].append(len(unique))
        per_sg_element_counter[sg].update(unique)
        per_sg_repetitions[sg].extend(elements.count(element) for element in unique)
        per_sg_wyckoff_counter[sg].update(name for _, name in sites)

        system = crystal_system(sg)
        lattice_rows[system].append(unit_volume_parameters(system, lattice_parameters(crystal.lattice)))
        volume_rows.append((v_atomic, crystal.volume / v_atomic))

    if not volume_rows:
        raise ValueError("no structure is usable for statistics (all partially occupied, too large or empty)")

    per_spacegroup = {
        sg: SpaceGroupStatistics(
            count=per_sg_count[sg],
            n_elements_probs=_probabilities_from_counts(per_sg_elements_count[sg]),
            element_probs=_normalised(per_sg_element_counter[sg]),
            n_sites_per_element_probs=_probabilities_from_counts(per_sg_repetitions[sg]),
            wyckoff_probs=_normalised(per_sg_wyckoff_counter[sg]),
        )
        for sg in sorted(per_sg_count)
    }
    classes = [sg for sg in sorted(per_sg_count) if per_sg_count[sg] >= config.min_count_per_spacegroup]
    in_classes = sum(per_sg_count[sg] for sg in classes)
    prior = {sg: per_sg_count[sg] / in_classes for sg in classes}

    volume_samples = np.array(volume_rows, dtype=np.float64)
    bandwidth = normal_reference_bandwidth(volume_samples[:, ::-1])  # columns (f, V_atomic) as statsmodels
    if np.any(bandwidth <= 0):  # a single structure or identical ones: fall back to 5% of the values
        bandwidth = np.where(bandwidth > 0, bandwidth, 0.05 * np.abs(volume_samples[:, ::-1]).mean(axis=0))
    lattice_samples = {
        system: np.array(lattice_rows[system], dtype=np.float64).reshape(len(lattice_rows[system]), len(LATTICE_PARAMETER_NAMES[system]))
        for system, _, _ in CRYSTAL_SYSTEMS
        if lattice_rows.get(system)
    }

    prov = dict(provenance or {})
    prov.setdefault("date", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    counts = dict(prov.get("counts", {}))
    counts.update(
        {
            "statistics_entries": len(entries),
            "used_for_statistics": int(sum(per_sg_count.values())),
            "in_classes": int(in_classes),
        }
    )
    prov["counts"] = counts
    prov["excluded_from_statistics"] = dict(excluded)
    prov["min_count_per_spacegroup"] = config.min_count_per_spacegroup
    prov.setdefault("statistics_config", config.model_dump(mode="json"))
    return Statistics(
        spacegroups=classes,
        prior=prior,
        per_spacegroup=per_spacegroup,
        lattice_samples=lattice_samples,
        volume_samples=volume_samples,
        volume_bandwidth=(float(bandwidth[0]), float(bandwidth[1])),
        provenance=prov,
    )


def classes_for_min_counts(statistics: Statistics, min_counts: Iterable[int]) -> dict[int, int]:
    """Number of classes the class list would have for each minimum count (per_spacegroup counts)."""
    counts = [s.count for s in statistics.per_spacegroup.values()]
    return {m: sum(c >= m for c in counts) for m in min_counts}


def free_parameters(system: str, parameters: Sequence[float]) -> np.ndarray:
    """The free parameters of `system` from (a, b, c, alpha, beta, gamma) (inverse of the expansion)."""
    full = dict(zip(("a", "b", "c", "alpha", "beta", "gamma"), parameters))
    return np.array([full[name] for name in LATTICE_PARAMETER_NAMES[system]], dtype=np.float64)


def plot_statistics(statistics: Statistics, prefix: Path | str, seed: int = 0, n_samples: int = 4000) -> list[Path]:
    """PNGs: space-group prior, lattice KDE marginals vs data, denseness samples vs data.

    Files are `<prefix>.prior.png`, `<prefix>.lattice.png`, `<prefix>.denseness.png`.
    """
    from xrdgen.plotting import pyplot

    plt = pyplot()

    prefix = str(prefix)
    rng = np.random.default_rng(seed)
    written = []

    fig, ax = plt.subplots(figsize=(12, 4))
    all_sgs = sorted(statistics.per_spacegroup)
    ax.bar(all_sgs, [statistics.per_spacegroup[sg].count for sg in all_sgs], color="0.75", width=1.0, label="all space groups")
    ax.bar(statistics.spacegroups, [statistics.per_spacegroup[sg].count for sg in statistics.spacegroups], color="C0", width=1.0,
           label=f"classes (>= {statistics.provenance.get('min_count_per_spacegroup', '?')}): {len(statistics.spacegroups)}")
    ax.set_xlabel("space group number")
    ax.set_ylabel("structures in the statistics part")
    ax.set_xlim(0, 231)
    ax.legend()
    source = ", ".join(Path(part.strip()).name for part in str(statistics.provenance.get("source", "")).split(","))
    ax.set_title(f"space-group prior — {source[:90]}")
    fig.tight_layout()
    written.append(Path(prefix + ".prior.png"))
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    systems = [s for s in LATTICE_PARAMETER_NAMES if s != "cubic" and len(statistics.lattice_samples.get(s, ())) >= len(LATTICE_PARAMETER_NAMES[s]) + 2]
    if systems:
        fig, axes = plt.subplots(len(systems), 6, figsize=(16, 2.4 * len(systems)), squeeze=False)
        for row, system in enumerate(systems):
            data = statistics.lattice_samples[system]
            try:
                draws = np.array([free_parameters(system, statistics.sample_lattice_parameters(system, rng)) for _ in range(n_samples)])
            except (ValueError, RuntimeError):
                draws = None
            for col in range(6):
                ax = axes[row, col]
                if col >= data.shape[1]:
                    ax.axis("off")
                    continue
                bins = np.linspace(*np.percentile(data[:, col], [0.5, 99.5]), 40)
                ax.hist(data[:, col], bins=bins, density=True, color="0.6", label=f"data (n={len(data)})")
                if draws is not None:
                    ax.hist(draws[:, col], bins=bins, density=True, histtype="step", color="C3", lw=1.5, label="KDE draws")
                ax.set_title(f"{system}: {LATTICE_PARAMETER_NAMES[system][col]}", fontsize=9)
                if col == 0:
                    ax.legend(fontsize=7)
        fig.suptitle("unit-volume lattice parameters (lengths in V^(1/3), angles in rad)")
        fig.tight_layout()
        written.append(Path(prefix + ".lattice.png"))
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)

    v = statistics.volume_samples
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(v[:, 0], v[:, 1], s=4, color="0.5", label="data")
    pick = rng.choice(len(v), size=min(n_samples, 2000), replace=True)
    draws = [statistics.sample_denseness(v[i, 0], rng) for i in pick]
    ax.scatter(v[pick, 0], draws, s=4, color="C3", alpha=0.5, label="conditional KDE draws")
    ax.set_xscale("log")
    ax.set_xlabel("V_atomic [Å³]")
    ax.set_ylabel("denseness factor f = V_cell / V_atomic")
    ax.legend()
    fig.tight_layout()
    written.append(Path(prefix + ".denseness.png"))
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written

"""The readable overview of a statistics file that `xrdgen stats show` and `xrdgen stats build` print.

It answers what a user must know before training on the statistics: where the counts came from
(the collection, and the metadata calibrating the space-group prior and the element statistics),
how many classes there are and why space groups were left out, and which space groups have their
own volume KDE and which fall back to the pooled one.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from xrdgen.geometry import CRYSTAL_SYSTEMS, crystal_system

LISTED = 20  # space groups listed by number before "..."


def _numbers(spacegroups) -> str:
    spacegroups = sorted(spacegroups)
    text = ", ".join(str(sg) for sg in spacegroups[:LISTED])
    return text + (f", ... ({len(spacegroups)})" if len(spacegroups) > LISTED else "")


def summarize(statistics, top: int = 10) -> str:
    """Source, counts, prior source, class list with the reasons for what is out, lattice and volume KDEs."""
    s = statistics
    prov = s.provenance
    rule = prov.get("class_rule", {})
    lines = [
        f"xrdgen statistics (format version {s.version})",
        f"  source: {prov.get('source', '?')}   built: {prov.get('date', '?')}",
    ]
    counts = prov.get("counts", {})
    if counts:
        lines.append("  counts: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    meta = prov.get("metadata")
    if meta:
        lines.append(
            f"  space-group prior, number of elements and elements from metadata {meta.get('file', '?')} "
            f"({meta.get('entries', '?')} entries, {meta.get('spacegroups', '?')} space groups; sha256 {str(meta.get('sha256', '?'))[:12]})"
        )
        if meta.get("note"):
            lines.append(f"    {meta['note']}")
        lines.append("  Wyckoff occupations, lattice and volume KDEs from the structures")
        what = f">= {rule.get('min_count_per_spacegroup', '?')} metadata entries and >= {rule.get('min_structures_per_class', '?')} ordered statistics structures"
    else:
        lines.append("  space-group prior from the statistics-part structures within the limits (partially occupied ones too)")
        what = f">= {prov.get('min_count_per_spacegroup', '?')} statistics structures"
    n_structures = sum(s.per_spacegroup[sg].count for sg in s.spacegroups)
    lines.append(f"  class list: {len(s.spacegroups)} classes: space groups with {what} ({n_structures} structures in classes)")
    decisions = prov.get("class_decisions", {})
    out = Counter(kind for kind, _ in decisions.values() if kind != "class")
    if out:
        source = "metadata entries" if meta else "structures"
        why = {
            "few_entries": f"fewer than {rule.get('min_count_per_spacegroup', '?')} {source}",
            "few_structures": "too few ordered structures for their own Wyckoff statistics",
        }
        lines.append(
            "  left out: " + ", ".join(f"{n} space groups with {why.get(kind, kind)}" for kind, n in sorted(out.items()))
        )
        frequent = sorted(
            ((sg, reason) for sg, (kind, reason) in decisions.items() if kind == "few_structures"),
            key=lambda item: -int(item[1].split()[0]),
        )[:5]
        if frequent:
            lines.append("    most frequent of those with too few structures: " + "; ".join(f"{sg}: {r}" for sg, r in frequent))
    ranked = sorted(s.spacegroups, key=lambda sg: -s.prior[sg])[:top]
    if ranked:
        lines.append("  most frequent: " + ", ".join(f"{sg} ({s.prior[sg]:.1%})" for sg in ranked))
        by_system = Counter(crystal_system(sg) for sg in s.spacegroups)
        lines.append("  classes per system: " + ", ".join(f"{name}={by_system[name]}" for name, _, _ in CRYSTAL_SYSTEMS))
    lines.append(
        "  lattice samples (unit volume): "
        + ", ".join(f"{system}={len(samples)}" for system, samples in s.lattice_samples.items())
    )
    v = s.volume_samples
    if len(v):
        lines.append(
            f"  volume samples: {len(v)}; V_atomic {v[:, 0].min():.0f}..{v[:, 0].max():.0f} Å³, "
            f"denseness f median {np.median(v[:, 1]):.3f} (pooled bandwidths f={s.volume_bandwidth[0]:.4f}, "
            f"V_atomic={s.volume_bandwidth[1]:.1f} Å³)"
        )
    own = [sg for sg in s.spacegroups if s.has_own_volume_kde(sg)]
    pooled = [sg for sg in s.spacegroups if not s.has_own_volume_kde(sg)]
    minimum = rule.get("min_structures_volume_kde")
    lines.append(
        f"  volume KDE: own for {len(own)} classes"
        + (f" (>= {minimum} structures)" if minimum else "")
        + f", pooled for {len(pooled)}"
        + (f": {_numbers(pooled)}" if pooled else "")
    )
    skipped = prov.get("skipped_total")
    if skipped is not None:
        lines.append(f"  skipped while reading: {skipped}")
    return "\n".join(lines)

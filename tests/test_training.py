"""``smgitops train``: byte-identical archives, their structure, and the command's exit codes and output.

The command runs through the CLI's ``main()`` in this process: conftest pins OpenBLAS's kernels before numpy loads,
as the console script does (test_in_process_training_gives_the_cli_digest holds that the bytes are the same), and
scikit-learn is imported once instead of once per run (about 1.2 s of CPU each). The runs whose point is the
process itself (another environment, umask, hash seed or time zone; numpy loaded before the CLI) are subprocesses.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import pickle
import runpy
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from smgitops import estimators, training
from smgitops.cli import main

SMGITOPS = [sys.executable, "-m", "smgitops.cli"]
MODEL = "cancer-logreg"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_train(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``smgitops train ARGS`` run by ``main()`` in this process from ``cwd``: its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["train", *map(str, args)])
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(["smgitops", "train", *map(str, args)], code, out.getvalue(), err.getvalue())


def run_train_process(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, umask: int = 0o022
) -> subprocess.CompletedProcess[str]:
    """``smgitops train ARGS`` in a process of its own (``env`` added to this one's, OPENBLAS_CORETYPE removed)."""
    full_env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    full_env.update(env or {})
    return subprocess.run(
        [*SMGITOPS, "train", *map(str, args)],
        cwd=cwd,
        env=full_env,
        umask=umask,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture()
def scratch_repo(tmp_path: Path, project_root: Path) -> Path:
    """A copy of the release files and data in a repository of their own."""
    repo = tmp_path / "repo"
    (repo / "releases").mkdir(parents=True)
    (repo / "data").mkdir()
    for name in ("dev.yaml", "prod.yaml", "release.schema.json"):
        shutil.copy2(project_root / "releases" / name, repo / "releases" / name)
    shutil.copy2(project_root / "data" / "breast_cancer.csv", repo / "data" / "breast_cancer.csv")
    return repo


def edit_release(path: Path, edit: Callable[[str], str]) -> None:
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")


def pinned_digest(release: Path, model_id: str = MODEL) -> str:
    doc: dict[str, Any] = yaml.safe_load(release.read_text(encoding="utf-8"))
    digest: str = doc["models"][model_id]["artifact_sha256"]
    return digest


# ----------------------------------------------------------------------------------------------------------------
# Determinism
# ----------------------------------------------------------------------------------------------------------------


def test_two_runs_in_different_environments_give_the_pinned_digest(
    scratch_repo: Path, tmp_path: Path, project_root: Path
) -> None:
    release = scratch_repo / "releases" / "dev.yaml"
    data = scratch_repo / "data" / "breast_cancer.csv"
    inference = training.INFERENCE_SOURCE
    original = inference.stat()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    digests = []
    runs = [
        ({"PYTHONHASHSEED": "0", "TZ": "UTC", "OPENBLAS_NUM_THREADS": "1"}, 0o022, scratch_repo, 1_000_000_000),
        (
            {"PYTHONHASHSEED": "4242", "TZ": "Pacific/Kiritimati", "OMP_NUM_THREADS": "2", "OPENBLAS_CORETYPE": "Zen"},
            0o077,
            elsewhere,
            1_700_000_000,
        ),
    ]
    try:
        for i, (env, umask, cwd, mtime) in enumerate(runs):
            for path in (data, release, inference):
                os.utime(path, (mtime, mtime))
            out = tmp_path / f"out{i}"
            result = run_train_process(release, "--out", out, cwd=cwd, env=env, umask=umask)
            assert result.returncode == 0, result.stderr
            digests.append(sha256(training.artifact_path(out, MODEL)))
    finally:
        os.utime(inference, ns=(original.st_atime_ns, original.st_mtime_ns))
    assert digests[0] == digests[1]
    assert digests[0] == pinned_digest(project_root / "releases" / "dev.yaml")


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_shipped_releases_pin_the_digests_training_produces(project_root: Path, tmp_path: Path, env_name: str) -> None:
    release = project_root / "releases" / f"{env_name}.yaml"
    result = run_train(release, "--out", tmp_path, "--check", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is True
    assert {m["model"]: m["digest"] for m in doc["models"]} == {
        m: pinned_digest(release, m) for m in yaml.safe_load(release.read_text())["models"]
    }


def test_in_process_training_gives_the_cli_digest(project_root: Path) -> None:
    """conftest pins the BLAS kernels before numpy loads, as the CLI does: same bytes in-process."""
    from smgitops.release import load_release

    release = load_release(project_root / "releases" / "dev.yaml")
    artifact = training.build_artifact(release, MODEL)
    assert training.sha256_bytes(artifact.archive) == pinned_digest(project_root / "releases" / "dev.yaml")


@pytest.mark.skipif(not training._is_x86_64(), reason="the kernel pin applies to x86-64 OpenBLAS")
def test_training_refuses_when_numpy_was_loaded_with_other_blas_kernels(scratch_repo: Path, tmp_path: Path) -> None:
    code = (
        "import sys, numpy\n"  # loads OpenBLAS with the kernels from the environment, before the CLI can pin them
        "from smgitops.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "out"
    env = {**os.environ, "OPENBLAS_CORETYPE": "Prescott"}
    result = subprocess.run(
        [sys.executable, "-c", code, "train", str(scratch_repo / "releases" / "dev.yaml"), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Prescott" in result.stderr and f"OPENBLAS_CORETYPE={training.OPENBLAS_CORETYPE}" in result.stderr
    assert not out.exists()


# ----------------------------------------------------------------------------------------------------------------
# Archive structure
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, project_root: Path) -> Path:
    out = tmp_path_factory.mktemp("artifacts")
    result = run_train(project_root / "releases" / "dev.yaml", "--out", out, cwd=out)
    assert result.returncode == 0, result.stderr
    return training.artifact_path(out, MODEL)


def test_gzip_header_has_no_name_and_no_time(archive: Path) -> None:
    raw = archive.read_bytes()
    assert raw[:3] == b"\x1f\x8b\x08"  # gzip, deflate
    assert raw[3] == 0  # FLG: no FNAME, FCOMMENT, FEXTRA, FHCRC
    assert raw[4:8] == b"\x00\x00\x00\x00"  # MTIME 0
    assert raw[8] == 2  # XFL: maximum compression
    assert raw[9] == 255  # OS: unknown, whatever the build machine


def test_tar_entries_are_sorted_root_owned_with_fixed_modes_and_mtime(archive: Path) -> None:
    tar_bytes = gzip.decompress(archive.read_bytes())
    assert tar_bytes[257:265] == b"ustar\x0000"  # POSIX USTAR, not GNU or PAX
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["code", "code/inference.py", "manifest.json", "model.joblib"]
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", ""), m.name
        assert m.mtime == training.ARCHIVE_MTIME, m.name
        assert m.mode == (0o755 if m.isdir() else 0o644), m.name
        assert m.isdir() or m.isfile(), m.name


def test_archive_carries_the_serving_script_and_a_complete_manifest(archive: Path, project_root: Path) -> None:
    import joblib
    import numpy
    import scipy
    import sklearn

    with tarfile.open(archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert files["code/inference.py"] == training.INFERENCE_SOURCE.read_bytes()
    assert files["model.joblib"][:2] == bytes([0x80, training.PICKLE_PROTOCOL])
    manifest = json.loads(files["manifest.json"])
    assert files["manifest.json"] == training.json_bytes(manifest)  # sorted keys, fixed separators
    spec = yaml.safe_load((project_root / "releases" / "dev.yaml").read_text())["models"][MODEL]
    header = (project_root / "data" / "breast_cancer.csv").read_text().splitlines()[0].split(",")
    assert manifest["model_id"] == MODEL
    assert manifest["data"] == {"path": spec["data"]["path"], "sha256": spec["data"]["sha256"], "rows": 569}
    assert (manifest["estimator"], manifest["params"], manifest["seed"]) == (
        spec["estimator"],
        spec["params"],
        spec["seed"],
    )
    assert manifest["split"]["test_size"] == 0.25 and manifest["split"]["random_state"] == spec["seed"]
    assert manifest["split"]["train_rows"] + manifest["split"]["test_rows"] == 569
    assert manifest["features"] == header[:-1] and len(manifest["features"]) == 30
    assert manifest["classes"] == [0, 1]
    assert manifest["libraries"] == {
        "joblib": joblib.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "scipy": scipy.__version__,
    }
    assert manifest["libraries"]["scikit-learn"] == estimators.TRAINING_SKLEARN_VERSION
    assert manifest["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert manifest["pickle_protocol"] == training.PICKLE_PROTOCOL
    assert set(manifest["metrics"]) == {"accuracy", "f1", "roc_auc"}
    for name, value in manifest["metrics"].items():
        assert 0.9 < value <= 1.0, name  # a usable classifier on held-out rows
        assert round(value, training.METRIC_DECIMALS) == value, name


def test_model_pickle_loads_with_the_serving_images_pickle_protocol(archive: Path) -> None:
    with tarfile.open(archive) as tar:
        member = tar.extractfile("model.joblib")
        assert member is not None
        data = member.read()
    # The highest protocol the stream uses must be one Python 3.9 reads (<= 5); joblib keeps ours.
    assert data[1] <= pickle.HIGHEST_PROTOCOL and data[1] <= 5


def test_pack_is_independent_of_the_order_files_are_given() -> None:
    files = {"model.joblib": b"m", "code/inference.py": b"i", "manifest.json": b"{}"}
    assert training.pack(files) == training.pack(dict(reversed(list(files.items()))))


def test_this_machines_zlib_deflates_like_canonical_zlib() -> None:
    training.check_zlib()  # raises ExternalError on a zlib whose output differs (e.g. zlib-ng)


def test_the_data_file_is_reproduced_byte_for_byte_by_its_script(
    project_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The script run as ``python data/make_breast_cancer.py OUT`` runs it (``__main__``, argv), in this process:
    its output depends on the installed scikit-learn and numpy, not on a fresh interpreter."""
    out = tmp_path / "breast_cancer.csv"
    script = project_root / "data" / "make_breast_cancer.py"
    monkeypatch.setattr(sys, "argv", [str(script), str(out)])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(script), run_name="__main__")
    assert exited.value.code == 0, capsys.readouterr().err
    assert out.read_bytes() == (project_root / "data" / "breast_cancer.csv").read_bytes()
    assert b"\r" not in out.read_bytes()


# ----------------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------------


def test_json_output_shape(scratch_repo: Path) -> None:
    result = run_train(scratch_repo / "releases" / "dev.yaml", "--json", cwd=scratch_repo)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"release", "check", "write", "written", "ok", "models"}
    assert doc["write"] is False and doc["written"] == []
    assert doc["check"] is False and doc["ok"] is True
    (model,) = doc["models"]
    assert set(model) == {"model", "digest", "expected", "matches", "path", "size", "metrics", "warnings"}
    path = Path(model["path"])
    assert path == scratch_repo / "out" / "artifacts" / MODEL / "model.tar.gz"  # default output directory
    assert model["digest"] == sha256(path) and model["size"] == path.stat().st_size
    assert model["expected"] == pinned_digest(scratch_repo / "releases" / "dev.yaml")
    assert set(model["metrics"]) == {"accuracy", "f1", "roc_auc"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.tar.gz"]  # no temporary file left behind


def test_plain_output_names_model_digest_and_path(scratch_repo: Path, tmp_path: Path) -> None:
    result = run_train(scratch_repo / "releases" / "dev.yaml", "--out", tmp_path, cwd=scratch_repo)
    assert result.returncode == 0, result.stderr
    path = training.artifact_path(tmp_path, MODEL)
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{MODEL} sha256={sha256(path)} ")
    assert "accuracy=" in line and line.endswith(str(path))


def test_check_fails_with_both_digests_when_the_release_pins_another(scratch_repo: Path, tmp_path: Path) -> None:
    release = scratch_repo / "releases" / "dev.yaml"
    stale = "ab" * 32
    edit_release(release, lambda text: text.replace(pinned_digest(release), stale))
    result = run_train(release, "--out", tmp_path, "--check", cwd=scratch_repo)
    assert result.returncode == 1, result.stderr
    actual = sha256(training.artifact_path(tmp_path, MODEL))
    assert actual in result.stderr and stale in result.stderr
    assert f"models.{MODEL}.artifact_sha256" in result.stderr
    without_check = run_train(release, "--out", tmp_path, cwd=scratch_repo)
    assert without_check.returncode == 1  # a stale release fails without --write too, and says how to fix it
    line = release.read_text().splitlines().index(f'    artifact_sha256: "{stale}"') + 1
    assert f"{release}:{line}: models.{MODEL}.artifact_sha256" in without_check.stderr
    assert f"run: smgitops train {release} --write" in without_check.stderr
    assert pinned_digest(release) == stale  # nothing written without --write


def test_write_pins_a_new_models_digest_and_changes_no_other_byte(scratch_repo: Path, tmp_path: Path) -> None:
    """The authoring loop: a model added without a digest; `train` alone refuses it (file:line, the fix), `train
    --write` trains and inserts one line; `train --check` then passes. Comments and formatting are untouched."""
    release = scratch_repo / "releases" / "dev.yaml"
    candidate = (
        "  # the candidate, C = 0.5: no digest yet\n"
        "  cancer-logreg-c05:\n"
        "    data:\n"
        "      path: data/breast_cancer.csv   # same data as the primary\n"
        f'      sha256: "{sha256(scratch_repo / "data" / "breast_cancer.csv")}"\n'
        "    estimator: sklearn.linear_model.LogisticRegression\n"
        "    params: {C: 0.5, max_iter: 5000}\n"
        "    seed: 7                   # same split\n"
        "\n"
    )
    edit_release(release, lambda text: text.replace("\nvariants:", "\n" + candidate + "variants:", 1))
    before = release.read_bytes()
    added_at = before.decode().splitlines().index("  cancer-logreg-c05:") + 1

    refused = run_train(release, "--out", tmp_path, cwd=scratch_repo)
    assert refused.returncode == 2
    assert f"{release}:{added_at}:3: models.cancer-logreg-c05.artifact_sha256: required field missing" in refused.stderr
    assert f"smgitops train {release} --write" in refused.stderr

    written = run_train(release, "--out", tmp_path, "--write", "--json", cwd=scratch_repo)
    assert written.returncode == 0, written.stderr
    doc = json.loads(written.stdout)
    digest = {m["model"]: m["digest"] for m in doc["models"]}["cancer-logreg-c05"]
    assert digest == sha256(training.artifact_path(tmp_path, "cancer-logreg-c05"))
    [entry] = doc["written"]
    after = release.read_bytes().decode().splitlines(keepends=True)
    assert after.pop(entry["line"] - 1) == f'    artifact_sha256: "{digest}"\n'
    assert "".join(after).encode() == before  # every other byte as it was
    assert f"wrote artifact_sha256 {digest} ({release}:{entry['line']}; was missing)" in written.stderr

    checked = run_train(release, "--out", tmp_path, "--check", cwd=scratch_repo)
    assert checked.returncode == 0, checked.stderr


def test_check_json_reports_not_ok(scratch_repo: Path, tmp_path: Path) -> None:
    release = scratch_repo / "releases" / "dev.yaml"
    edit_release(release, lambda text: text.replace(pinned_digest(release), "cd" * 32))
    result = run_train(release, "--out", tmp_path, "--check", "--json", cwd=scratch_repo)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["models"][0]["matches"] is False
    assert doc["models"][0]["expected"] == "cd" * 32


def test_data_digest_mismatch_is_bad_input_and_writes_nothing(scratch_repo: Path, tmp_path: Path) -> None:
    data = scratch_repo / "data" / "breast_cancer.csv"
    data.write_bytes(data.read_bytes().replace(b"17.99,", b"17.98,", 1))
    out = tmp_path / "out"
    result = run_train(scratch_repo / "releases" / "dev.yaml", "--out", out, cwd=scratch_repo)
    assert result.returncode == 2
    assert "releases/dev.yaml" in result.stderr and f"models.{MODEL}.data.sha256" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ("      C: -1.0\n      max_iter: 1000\n", "'C' parameter"),
        ("      C: 1.0\n      penalty: l1\n", "penalty"),
    ],
)
def test_parameter_values_the_estimator_refuses_are_bad_input(
    scratch_repo: Path, tmp_path: Path, params: str, fragment: str
) -> None:
    release = scratch_repo / "releases" / "dev.yaml"
    text = release.read_text()
    start = text.index("      C: 1.0\n")
    end = text.index("    seed:", start)
    edit_release(release, lambda t: t[:start] + params + t[end:])
    out = tmp_path / "out"
    result = run_train(release, "--out", out, cwd=scratch_repo)
    assert result.returncode == 2, result.stderr
    assert f"models.{MODEL}.params" in result.stderr and fragment in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_data_changed_after_loading_the_release_is_refused(scratch_repo: Path) -> None:
    from smgitops.errors import UserError
    from smgitops.release import load_release

    release = load_release(scratch_repo / "releases" / "dev.yaml")
    data = scratch_repo / "data" / "breast_cancer.csv"
    assert training.read_data(release, MODEL) == data.read_bytes()
    data.write_bytes(data.read_bytes() + b"1" + b",1" * 30 + b"\n")
    with pytest.raises(UserError, match=rf"models\.{MODEL}\.data\.sha256: data/breast_cancer\.csv has sha256"):
        training.read_data(release, MODEL)


def test_unknown_model_is_bad_input_naming_it(scratch_repo: Path) -> None:
    result = run_train(scratch_repo / "releases" / "dev.yaml", "--model", "no-such-model", cwd=scratch_repo)
    assert result.returncode == 2
    assert "no-such-model" in result.stderr and MODEL in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_release_is_bad_input(tmp_path: Path) -> None:
    result = run_train(tmp_path / "releases" / "nope.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr


def test_model_option_trains_only_that_model(scratch_repo: Path, tmp_path: Path) -> None:
    release = scratch_repo / "releases" / "dev.yaml"
    data_sha = sha256(scratch_repo / "data" / "breast_cancer.csv")
    tree = (
        "  cancer-tree:\n"
        "    data:\n"
        "      path: data/breast_cancer.csv\n"
        f"      sha256: {data_sha}\n"
        "    estimator: sklearn.tree.DecisionTreeClassifier\n"
        "    params:\n"
        "      max_depth: 4\n"
        "    seed: 11\n"
        f'    artifact_sha256: "{"0" * 64}"\n'
    )
    edit_release(release, lambda text: text.replace("\nvariants:", "\n" + tree + "\nvariants:", 1))
    out = tmp_path / "out"
    logreg = pinned_digest(release)
    result = run_train(release, "--out", out, "--model", "cancer-tree", "--write", "--json", cwd=scratch_repo)
    assert result.returncode == 0, result.stderr
    (model,) = json.loads(result.stdout)["models"]
    assert model["model"] == "cancer-tree"
    assert pinned_digest(release, "cancer-tree") == model["digest"] and pinned_digest(release) == logreg
    assert sorted(p.name for p in out.iterdir()) == ["cancer-tree"]
    with tarfile.open(training.artifact_path(out, "cancer-tree")) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        manifest = json.loads(member.read())
    assert (manifest["estimator"], manifest["params"], manifest["seed"]) == (
        "sklearn.tree.DecisionTreeClassifier",
        {"max_depth": 4},
        11,
    )


# ----------------------------------------------------------------------------------------------------------------
# Estimators
# ----------------------------------------------------------------------------------------------------------------


def test_accepted_params_exclude_knobs_that_break_determinism_or_cost_safety() -> None:
    for dotted in estimators.ALLOWED_ESTIMATORS:
        accepted = estimators.accepted_params(dotted)
        assert accepted, dotted
        assert not accepted & {"n_jobs", "warm_start", "verbose", "random_state", "init"}, dotted
    assert {"C", "max_iter", "penalty"} <= estimators.accepted_params("sklearn.linear_model.LogisticRegression")
    assert "n_estimators" in estimators.accepted_params("sklearn.ensemble.RandomForestClassifier")


def test_estimator_outside_the_allowlist_is_refused() -> None:
    with pytest.raises(ValueError, match="allowlist"):
        estimators.accepted_params("sklearn.svm.SVC")
    with pytest.raises(ValueError, match="allowlist"):
        estimators.estimator_class("os.system")


def test_only_the_image_with_the_training_sklearn_matches() -> None:
    assert estimators.image_matches_training("1.2-1-cpu-py3")
    assert [t for t in estimators.IMAGE_SKLEARN_VERSIONS if estimators.image_matches_training(t)] == ["1.2-1-cpu-py3"]
    assert not estimators.image_matches_training("1.2-2-cpu-py3")


_NUMPY_ENVIRON_PROBE = """
import os, sys
deleted = []
delete = os._Environ.__delitem__
def recording_delete(self, key):
    deleted.append(key)
    delete(self, key)
os._Environ.__delitem__ = recording_delete
if sys.argv[1] == "steady":
    from smgitops.estimators import steady_environ_for_numpy
    steady_environ_for_numpy()
before = dict(os.environ)
import numpy  # noqa: F401
print(",".join(deleted))
print(sorted(set(before) ^ set(os.environ)))
"""


@pytest.mark.parametrize("mode", ["plain", "steady"])
def test_numpys_first_import_leaves_the_environment_alone_once_steadied(mode: str) -> None:
    """numpy's first import adds OPENBLAS_MAIN_FREE/GOTOBLAS_MAIN_FREE and deletes them again: in a thread, that
    deletion broke another thread iterating os.environ (botocore making a client) with a KeyError during a deploy.
    Steadied first (as deploy's held-out reader, the emulator's warm-up and the demo do), the import changes
    nothing; plain, it deletes both (what this guards against, checked so that the probe can fail)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_MAIN_FREE", "GOTOBLAS_MAIN_FREE")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "scripts")
    out = subprocess.run(
        [sys.executable, "-c", _NUMPY_ENVIRON_PROBE, mode], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    if mode == "steady":
        assert out == ["", "[]"], out
    else:
        assert out[0].split(",") == ["OPENBLAS_MAIN_FREE", "GOTOBLAS_MAIN_FREE"], out

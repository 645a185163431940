"""Issue 25: ``ferkit predict --ray`` and ``ferkit.ray`` give the rows of a local ``ferkit predict``, on a Ray
instance started in this process and on a real cluster started by ``ray start`` on 127.0.0.1 (2 CPUs), with a few
hundred real images (FER2013 crops, web photos) and bad files; a worker killed mid-run still gives every row once."""

from __future__ import annotations

import csv
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ferkit.cli import main

if importlib.util.find_spec("ray") is None:  # found, not imported: Ray reads its settings when imported
    pytest.skip("pip install 'ferkit[ray]'", allow_module_level=True)

from ray_helpers import ASSETS, Cluster, assert_same_outputs, clean_env, make_inputs, outputs  # noqa: E402

OPTS = ["-q", "--no-progress"]


@pytest.fixture(autouse=True)
def _ray_environment():
    """Ray's variables as they were before each test (joining a cluster sets some in this process)."""
    before = {k: v for k, v in os.environ.items() if k.startswith("RAY_")}
    yield
    for k in [k for k in os.environ if k.startswith("RAY_")]:
        del os.environ[k]
    os.environ.update(before)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, fer_root) -> list[str]:
    return make_inputs(tmp_path_factory.mktemp("inputs"), fer_root)


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> Path:
    """A local run (no Ray): the rows every Ray run must give."""
    d = tmp_path_factory.mktemp("local")
    assert main(["predict", *inputs, *outputs(d), *OPTS]) == 1  # bad files: error rows, exit code 1
    return d


def _bad_rows(d: Path) -> dict[str, str]:
    with open(d / "faces.csv", newline="") as f:
        return {r["file"]: r["status"] for r in csv.DictReader(f) if r["status"].startswith("error")}


def test_local_parquet_holds_the_csv_rows(reference, inputs):
    import pyarrow.parquet as pq

    n = assert_same_outputs(reference, reference)
    rows = pq.read_table(reference / "faces.parquet").to_pylist()
    assert n == len(rows) > 250 and {r["status"] for r in rows} >= {"ok", "no face"}
    assert pq.read_schema(reference / "faces.parquet").field("happy").type == "float"
    bad = _bad_rows(reference)
    assert {"bad/text.jpg", "bad/empty.png", "bad/truncated.jpg"} < set(bad)
    assert any(k.endswith("missing.jpg") and "no such file" in v for k, v in bad.items())


# --------------------------------------------------------------------------- options (no Ray started)


@pytest.mark.parametrize("argv, words", [
    (["predict", "--ray", str(ASSETS)], ["not a Ray address", "put --ray after the inputs"]),
    (["predict", str(ASSETS), "--parquet", "x.csv"], ["not a .parquet file name"]),
])
def test_bad_values_are_refused(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and all(w in err for w in words)


@pytest.mark.parametrize("extra, words", [
    (["--ray", "--out", "ann"], "--out/--annotate"),
    (["--ray", "--workers", "2"], "--num-workers sets"),
    (["--num-workers", "2"], "--num-workers sets the workers of a --ray run"),
])
def test_options_that_do_not_apply_say_so(tmp_path, extra, words, capsys):
    assert main(["predict", str(ASSETS), *extra, "--no-progress"]) == 2
    assert words in capsys.readouterr().err


def test_an_address_without_a_cluster_fails_at_once(capsys):
    from ray_helpers import free_port

    t0 = time.monotonic()
    address = f"127.0.0.1:{free_port()}"
    assert main(["predict", str(ASSETS), "--ray", address, "--no-progress"]) == 2
    assert f"--ray {address}: no Ray cluster answers there" in capsys.readouterr().err
    assert time.monotonic() - t0 < 30  # not Ray's own minutes of retries


def test_parquet_never_replaces_an_input(tmp_path, capsys):
    img = tmp_path / "x.parquet"
    img.write_bytes((ASSETS / "coffee.jpg").read_bytes())
    assert main(["predict", str(img), "--parquet", str(img), "--no-progress"]) == 2
    assert "--parquet" in capsys.readouterr().err and img.read_bytes() == (ASSETS / "coffee.jpg").read_bytes()


def test_uri_inputs_are_listed_like_local_paths():
    from ferkit.ray import list_inputs

    local = list_inputs([str(ASSETS), str(ASSETS / "nope.jpg")])
    uri = list_inputs([ASSETS.as_uri(), (ASSETS / "nope.jpg").as_uri()])
    assert local[1] == uri[1] == ["assets/astronaut.jpg", "assets/camera.jpg", "assets/coffee.jpg"]
    assert uri[0] == [(ASSETS / n).as_uri() for n in ("astronaut.jpg", "camera.jpg", "coffee.jpg")]
    assert [why for _i, why in local[2]] == [why for _i, why in uri[2]] == ["no such file or folder"]


# --------------------------------------------------------------------------- Ray in this process


class TestInProcess:
    @pytest.fixture(scope="class")
    @classmethod
    def ray_here(cls):
        from ferkit.ray import connect, disconnect

        conn = connect(None, num_cpus=2)  # as `--ray` does: 127.0.0.1, no dashboard, no usage statistics
        yield conn
        disconnect(conn)

    def test_cli_rows_equal_local_predict(self, ray_here, reference, inputs, tmp_path, capsys):
        import ray

        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
        rc = main(["predict", *inputs, *outputs(tmp_path), *OPTS, "--ray", "--num-workers", "2"])
        err = capsys.readouterr().err
        assert rc == 1 and "2 worker(s) x 1 thread(s)" in err
        assert "bad/truncated.jpg: cannot decode image" in err
        assert assert_same_outputs(reference, tmp_path) > 250

    def test_callable_class_in_a_users_pipeline(self, ray_here, reference, tmp_path):
        """FerkitPredictor in map_batches on Ray Data's own reader (bytes + path), local paths and file:// URIs."""
        import pyarrow.parquet as pq
        import ray.data

        from ferkit.ray import FerkitPredictor

        ref = {(r["file"], r["face"]): r for r in pq.read_table(reference / "faces.parquet").to_pylist()}
        names = {str(ASSETS / n): f"assets/{n}" for n in ("astronaut.jpg", "camera.jpg", "coffee.jpg")}
        bad = tmp_path / "bad.jpg"
        bad.write_text("not an image")
        ds = ray.data.read_binary_files([*names, str(bad)], include_paths=True)
        uris = ray.data.from_items([{"path": ASSETS.joinpath("astronaut.jpg").as_uri()}])
        for data in (ds, uris):
            faces = data.map_batches(FerkitPredictor, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1,
                                     batch_size=8)
            rows = faces.take_all()
            for r in rows:
                path = r["file"].removeprefix("file://")
                if path == str(bad):
                    assert r["status"].startswith(f"error: {bad}: cannot decode image") and r["face"] is None
                    continue
                want = ref[(names[path], r["face"])]
                assert r["status"] == want["status"] and r["label"] == want["label"]
                assert (r["x"], r["y"], r["w"], r["h"], r["detector"]) == \
                    (want["x"], want["y"], want["w"], want["h"], want["detector"])
                if want["face"] is not None:
                    assert abs(r["happy"] - want["happy"]) <= 1e-6
            files = {r["file"].removeprefix("file://") for r in rows}
            assert files == ({ASSETS.joinpath("astronaut.jpg").as_posix()} if data is uris else {*names, str(bad)})


# --------------------------------------------------------------------------- a cluster started by `ray start`


class TestCluster:
    @pytest.fixture(scope="class")
    @classmethod
    def cluster(cls):
        c = Cluster()
        try:
            yield c
        finally:
            c.stop()
            assert not c.pids(), "the test cluster's processes outlived it"

    def _predict(self, cluster, inputs, out: Path) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "ferkit", "predict", *inputs, *outputs(out), *OPTS,
               "--ray", cluster.address, "--num-workers", "2", "--threads", "1"]
        return subprocess.Popen(cmd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_cluster_binds_loopback_only(self, cluster):
        import shutil

        if not shutil.which("ss"):
            pytest.skip("no ss here to list listening sockets")
        addrs = cluster.listening()
        assert addrs and all(a.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")) for a in addrs), addrs

    def test_joined_cluster_rows_equal_local_predict(self, cluster, reference, inputs, tmp_path):
        p = self._predict(cluster, inputs, tmp_path)
        out, err = p.communicate(timeout=600)
        assert p.returncode == 1, err[-3000:]
        assert f"the Ray cluster at {cluster.address}, 2 worker(s)" in err
        assert assert_same_outputs(reference, tmp_path) > 250

    def test_a_killed_worker_loses_and_repeats_nothing(self, cluster, reference, inputs, tmp_path):
        p = self._predict(cluster, inputs, tmp_path)
        seen: set[int] = set()  # the actor processes met during the run
        killed = before = None
        deadline = time.monotonic() + 400
        while p.poll() is None and time.monotonic() < deadline:
            live = cluster.workers("FerkitPredictor")
            seen |= live
            if killed is None:
                staged = list(tmp_path.glob(".faces.csv.*.tmp"))
                rows = sum(1 for _ in staged[0].open()) - 1 if staged else 0
                if rows > 0 and len(live) >= 2:
                    killed, before, done_before = min(live), set(seen), rows
                    os.kill(killed, signal.SIGKILL)  # one actor's process, mid-run
            time.sleep(0.2 if killed is None else 0.5)
        out, err = p.communicate(timeout=60)
        assert killed is not None, f"the run ended before a worker could be killed: {err[-2000:]}"
        assert p.returncode == 1, err[-3000:]
        n = assert_same_outputs(reference, tmp_path)  # every row, in input order, each once
        assert done_before < n
        with open(tmp_path / "faces.csv", newline="") as f:
            keys = [(r["file"], r["face"]) for r in csv.DictReader(f)]
        assert len(keys) == len(set(keys)) == n
        assert seen - before, "Ray restarted no worker after the kill"

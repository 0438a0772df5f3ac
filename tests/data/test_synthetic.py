"""Tests of the procedural datasets (fomm.data.synthetic): determinism, ground truth, layout, CLI."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

import fomm.data.synthetic as S
from fomm.data.synthetic import face as F
from fomm.data.synthetic import puppet as P
from fomm.data.synthetic import render as R
from fomm.errors import FommError


def _read_png(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1]


def _tree_digest(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------------------------
# API basics and determinism
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("category", S.CATEGORIES)
def test_generate_video_shapes_and_determinism(category):
    a = S.generate_video(category, "train", 3, 7, 4, 32)
    b = S.generate_video(category, "train", 3, 7, 4, 32)
    J = len(S.keypoint_names(category))
    assert a["frames"].shape == (4, 32, 32, 3) and a["frames"].dtype == np.uint8
    assert a["keypoints_px"].shape == (4, J, 2) and a["keypoints_px"].dtype == np.float32
    assert a["name"] == f"{category}-train-00003#000"
    assert a["frames"].tobytes() == b["frames"].tobytes()
    assert a["keypoints_px"].tobytes() == b["keypoints_px"].tobytes()
    np.testing.assert_allclose(a["keypoints"], 2 * a["keypoints_px"] / 31 - 1, atol=1e-6)
    for other in (
        S.generate_video(category, "train", 4, 7, 4, 32),
        S.generate_video(category, "train", 3, 8, 4, 32),
        S.generate_video(category, "test", 3, 7, 4, 32),
    ):
        assert not np.array_equal(other["frames"], a["frames"])
    # Motion: frames of one video differ from each other.
    assert not np.array_equal(a["frames"][0], a["frames"][-1])


def test_keypoint_counts_and_names():
    assert len(S.keypoint_names("puppet")) >= 13 and len(S.part_names("puppet")) >= 10
    assert len(S.keypoint_names("face")) >= 10
    for cat in S.CATEGORIES:
        assert set(S.keypoint_parts(cat)) == set(S.keypoint_names(cat))
        assert all(set(parts) <= set(S.part_names(cat)) for parts in S.keypoint_parts(cat).values())
    with pytest.raises(FommError):
        S.keypoint_names("horse")


def test_clips_share_identity():
    a = S.video_params("face", "train", 2, 0, 4, clips_per_identity=2)
    b = S.video_params("face", "train", 3, 0, 4, clips_per_identity=2)
    assert a["identity_id"] == b["identity_id"] == "face-train-00001"
    assert (a["name"], b["name"]) == ("face-train-00001#000", "face-train-00001#001")
    assert all(np.array_equal(a["identity"][k], b["identity"][k]) for k in a["identity"])
    assert not np.array_equal(a["pose"]["yaw"], b["pose"]["yaw"])


@pytest.mark.parametrize("category", S.CATEGORIES)
def test_train_test_identities_disjoint(category):
    def vec(split, i):
        ident = S.video_params(category, split, i, 0, 2)["identity"]
        return np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in ident.values()])

    train = [vec("train", i) for i in range(12)]
    test = [vec("test", i) for i in range(6)]
    for t in test:
        assert all(not np.allclose(t, tr) for tr in train)
    assert len({v.tobytes() for v in train + test}) == len(train) + len(test)


def test_trajectories_respect_limits():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pose = S.sample_trajectory("puppet", 60, rng)
        for side in "lr":
            for joint in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
                lo, hi = P.JOINT_LIMITS[joint]
                v = pose[f"{side}_{joint}"]
                assert v.shape == (60,) and lo <= v.min() and v.max() <= hi
        assert np.abs(np.diff(pose["l_elbow"])).max() < 0.35  # smooth
        face = S.sample_trajectory("face", 60, rng)
        assert face["eye_open"].shape == (60, 2) and 0 <= face["eye_open"].min() and face["eye_open"].max() <= 1
        assert 0 <= face["mouth_open"].min() and face["mouth_open"].max() <= 1
        assert np.abs(face["yaw"]).max() <= 0.3


# --------------------------------------------------------------------------------------------
# Ground truth: keypoints land on the rendered parts
# --------------------------------------------------------------------------------------------
def _visible_ok(category, ident, pose, part_map, kp_px):
    """Per keypoint: the part drawn at its pixel is one of its parts, or a part drawn on top."""
    names = S.part_names(category)
    kp_parts = S.keypoint_parts(category)
    size = part_map.shape[0]
    if category == "puppet":
        order = P.draw_order(P.skeleton(ident, pose)[2])
    ok = []
    for name, (x, y) in zip(S.keypoint_names(category), kp_px):
        xi, yi = int(round(float(x))), int(round(float(y)))
        if not (0 <= xi < size and 0 <= yi < size):
            ok.append(None)
            continue
        got = part_map[yi, xi]
        here = names[got] if got >= 0 else None
        if here in kp_parts[name]:
            ok.append(True)
        elif category == "puppet" and here is not None:
            ok.append(order.index(here) > min(order.index(p) for p in kp_parts[name]))  # occluded
        else:
            ok.append(False)
    return ok


def test_puppet_keypoints_inside_their_parts():
    for idx in range(4):
        v = S.video_params("puppet", "test", idx, 0, 24)
        ident = v["identity"]
        r = S.renderer("puppet", ident, 64)
        bg = S.render_background("puppet", ident, 64).astype(int)
        for t in (0, 11, 23):
            pose = S.pose_at(v["pose"], t)
            image, kp_px, part_map = r.render(pose, with_labels=True)
            # Geometry: every keypoint is inside the (unoccluded) shape of each of its parts.
            kp_units, frames, _ = P.skeleton(ident, pose)
            np.testing.assert_allclose(kp_px, kp_units * 64 - 0.5, atol=1e-4)
            for name, p in zip(P.KEYPOINT_NAMES, kp_units):
                for part in P.KEYPOINT_PARTS[name]:
                    o, au, av = frames[part]
                    uv = np.linalg.solve(np.stack([au, av], axis=1), p - o)
                    assert P.part_mask(ident, part, uv[0:1], uv[1:2])[0], (name, part)
            # Rendering: the part map agrees with occlusion, and parts really are drawn.
            ok = _visible_ok("puppet", ident, pose, part_map, kp_px)
            assert all(o is not False for o in ok), list(zip(P.KEYPOINT_NAMES, ok))
            changed = np.abs(image.astype(int) - bg).max(-1) > 12
            covered = part_map >= 0
            iou = (changed & covered).sum() / (changed | covered).sum()
            assert iou > 0.75, iou


def test_face_keypoints_on_their_parts():
    for idx in range(3):
        v = S.video_params("face", "test", idx, 0, 16)
        ident = v["identity"]
        r = S.renderer("face", ident, 128)
        for t in (0, 15):
            pose = S.pose_at(v["pose"], t)
            pose["eye_open"] = np.array([1.0, 1.0])  # pupils are hidden by blinks otherwise
            pose["mouth_open"] = np.float64(0.6)
            image, kp_px, part_map = r.render(pose, with_labels=True)
            ok = _visible_ok("face", ident, pose, part_map, kp_px)
            assert all(ok), [(n, o) for n, o in zip(F.KEYPOINT_NAMES, ok) if not o]
            # Pupils are dark, on the iris.
            for side in "lr":
                x, y = np.round(kp_px[F.KEYPOINT_NAMES.index(f"{side}_pupil")]).astype(int)
                assert image[y, x].max() < 120
            # Closing the eyes hides the irises.
            pose["eye_open"] = np.array([0.0, 0.0])
            _, _, closed_map = r.render(pose, with_labels=True)
            assert not np.isin(closed_map, [F.PART_INDEX["l_iris"], F.PART_INDEX["r_iris"]]).any()


def test_face_yaw_shifts_features():
    v = S.video_params("face", "test", 0, 0, 2)
    pose = S.pose_at(v["pose"], 0)
    pose.update(yaw=np.float64(0.0), rotation=np.float64(0.0))
    _, kp0 = S.render_frame("face", v["identity"], pose, 64)
    pose["yaw"] = np.float64(0.3)
    _, kp1 = S.render_frame("face", v["identity"], pose, 64)
    nose = F.KEYPOINT_NAMES.index("nose_tip")
    chin = F.KEYPOINT_NAMES.index("chin")
    shift = kp1[:, 0] - kp0[:, 0]
    assert shift[nose] > shift[chin] + 0.5 and shift[nose] > 1.0  # the nose moves most


# --------------------------------------------------------------------------------------------
# Anti-aliasing
# --------------------------------------------------------------------------------------------
def test_polygon_edges_are_antialiased():
    ss, size = 4, 16
    canvas = np.zeros((size * ss, size * ss, 3), np.float32)
    # A vertical edge at output x = 7.75 (in output pixel coordinates): pixel 8 is 25 % covered.
    x_edge = 7.75 * ss + (ss - 1) / 2
    R.fill_polygon(canvas, np.array([[x_edge, -1], [100, -1], [100, 100], [x_edge, 100]]), (1.0, 1.0, 1.0))
    img = R.downsample(canvas, size)
    assert img[5, 7].max() == 0 or img[5, 7].max() < 100
    assert 20 < img[5, 8, 0] < 235 and img[5, 9, 0] == 255 and img[5, 3, 0] == 0


@pytest.mark.parametrize("category", S.CATEGORIES)
def test_frame_edges_have_intermediate_colours(category):
    v = S.video_params(category, "test", 1, 0, 2)
    ident = v["identity"]
    image, _, part_map = S.renderer(category, ident, 64).render(S.pose_at(v["pose"], 0), with_labels=True)
    bg = S.render_background(category, ident, 64).astype(int)
    inside = part_map >= 0

    def near(mask, r):  # some pixel within r (Chebyshev) is set, without wrapping around
        return cv2.dilate(
            mask.astype(np.uint8),
            np.ones((2 * r + 1, 2 * r + 1), np.uint8),
            borderType=cv2.BORDER_CONSTANT,
            borderValue=0,
        ).astype(bool)

    cross = cv2.dilate(
        inside.astype(np.uint8),
        np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8),
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    ).astype(bool)
    edge = ~inside & cross
    assert edge.sum() > 20
    # Background-labelled pixels next to a part are partly covered: a blend, not the pure background.
    blended = np.abs(image.astype(int) - bg).max(-1)[edge] > 3
    assert blended.mean() > 0.3
    # Background pixels away from every part are exactly the background.
    far = ~near(inside, 2)
    assert far.sum() > 100
    np.testing.assert_array_equal(image[far], bg[far])


# --------------------------------------------------------------------------------------------
# Dataset on disk
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def puppet_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "puppet32"
    out = S.write_dataset(
        root, "puppet", num_train=3, num_test=3, num_frames=4, size=32, seed=5, num_cross_pairs=2, progress=False
    )
    assert out == root
    return root


def test_layout(puppet_root):
    root = puppet_root
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["category"] == "puppet" and meta["size"] == 32 and meta["num_frames"] == 4
    assert meta["counts"]["train"] == 3 and meta["counts"]["test"] == 3 and meta["counts"]["cross_identity"] == 2
    assert meta["keypoint_names"] == S.keypoint_names("puppet") and meta["generator_version"]
    J = len(meta["keypoint_names"])
    for split in ("train", "test"):
        names = sorted(p.name for p in (root / split).iterdir() if p.is_dir())
        assert names == [f"puppet-{split}-{i:05d}#000" for i in range(3)]
        for name in names:
            frames = sorted((root / split / name).iterdir())
            assert [f.name for f in frames] == [f"{t:07d}.png" for t in range(4)]
            assert _read_png(frames[0]).shape == (32, 32, 3)
            z = np.load(root / split / f"{name}.npz")
            assert z["keypoints_px"].shape == (4, J, 2) and z["keypoints"].shape == (4, J, 2)
            assert z["pose_translation"].shape == (4, 2) and z["pose_l_elbow"].shape == (4,)
            assert z["identity_part_color1"].shape == (len(S.part_names("puppet")), 3)
            assert str(z["category"]) == "puppet" and int(z["size"]) == 32 and int(z["fps"]) == S.FPS
            assert str(z["name"]) == name
    # The PNG frames are the exact rendering.
    v = S.generate_video("puppet", "test", 1, 5, 4, 32)
    assert np.array_equal(_read_png(root / "test" / v["name"] / "0000002.png"), v["frames"][2])
    with open(root / "pairs.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and set(rows[0]) == {"source", "driving"}
    test_names = {p.name for p in (root / "test").iterdir() if p.is_dir()}
    assert all(r["source"] in test_names and r["driving"] in test_names for r in rows)
    assert not list(root.parent.glob(".*.fomm-*.tmp*"))


def test_cross_identity_ground_truth(puppet_root):
    root = puppet_root
    with open(root / "cross_identity" / "pairs.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and list(rows[0]) == ["name", "source_identity_video", "driving_video"]
    for row in rows:
        src = np.load(root / "test" / f"{row['source_identity_video']}.npz")
        drv = np.load(root / "test" / f"{row['driving_video']}.npz")
        gt = np.load(root / "cross_identity" / f"{row['name']}.npz")
        assert row["source_identity_video"].split("#")[0] != row["driving_video"].split("#")[0]
        pose_keys = [k for k in gt.files if k.startswith("pose_")]
        ident_keys = [k for k in gt.files if k.startswith("identity_")]
        assert pose_keys and ident_keys
        for k in pose_keys:  # B's motion ...
            np.testing.assert_array_equal(gt[k], drv[k])
        for k in ident_keys:  # ... performed by A
            np.testing.assert_array_equal(gt[k], src[k])
        frames = np.stack([_read_png(p) for p in sorted((root / "cross_identity" / row["name"]).iterdir())])
        ident = {k[len("identity_") :]: gt[k] for k in ident_keys}
        poses = {k[len("pose_") :]: gt[k] for k in pose_keys}
        expect, kps = S.render_video("puppet", ident, poses, 32)
        assert np.array_equal(frames, expect)
        np.testing.assert_allclose(gt["keypoints_px"], kps)
        a0 = _read_png(root / "test" / row["source_identity_video"] / "0000000.png")
        b0 = _read_png(root / "test" / row["driving_video"] / "0000000.png")
        assert not np.array_equal(frames[0], a0) and not np.array_equal(frames[0], b0)
        # Same pose, other body: keypoints differ from B's (different proportions).
        assert np.abs(gt["keypoints_px"] - drv["keypoints_px"]).max() > 0.5


def test_write_dataset_is_byte_identical_and_worker_independent(tmp_path, puppet_root):
    other = S.write_dataset(
        tmp_path / "again",
        "puppet",
        num_train=3,
        num_test=3,
        num_frames=4,
        size=32,
        seed=5,
        num_cross_pairs=2,
        progress=False,
        workers=2,
    )
    assert _tree_digest(other) == _tree_digest(puppet_root)  # dataset.json included: nothing timed


def test_default_workers_is_the_available_cores():
    from fomm.data.synthetic.dataset import default_workers

    assert default_workers() == len(os.sched_getaffinity(0))


def test_preview_grid_draws_ground_truth_keypoints(tmp_path):
    from fomm.data.synthetic.preview import preview_grid, upscale_nearest, write_preview

    frame = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    big, kp = upscale_nearest(frame, np.array([[0.0, 1.0]]), 3)
    assert big.shape == (6, 6, 3) and np.array_equal(big[4, 1], frame[1, 0])
    np.testing.assert_allclose(kp, [[1.0, 4.0]])  # the centre of the enlarged pixel
    plain = preview_grid("face", size=32, seed=3, num_videos=2, num_columns=3, num_frames=4, display=64)
    assert plain.shape == (2 * 64 + 2, 3 * 64 + 2 * 2, 3) and plain.dtype == np.uint8
    video = S.generate_video("face", "train", 1, 3, 4, 32)
    cell = plain[66:130, 0:64]  # row 1 (video 1), column 0 (frame 0)
    x, y = np.rint(2 * video["keypoints_px"][0, 0] + 0.5).astype(int)
    assert not np.array_equal(cell[y, x], np.repeat(np.repeat(video["frames"][0], 2, 0), 2, 1)[y, x])
    path = write_preview(tmp_path / "p.png", "puppet", size=32, num_videos=1, num_columns=2, num_frames=4, display=32)
    assert path.is_file()
    with pytest.raises(FommError, match="PNG"):
        write_preview(tmp_path / "p.jpg", "puppet")


def test_cli_preview_without_a_dataset(tmp_path, capsys):
    from fomm.cli import main

    assert (
        main(["synth", "--category", "puppet", "--size", "32", "--frames", "4", "--preview", str(tmp_path / "g.png")])
        == 0
    )
    assert (tmp_path / "g.png").is_file() and "preview" in capsys.readouterr().out
    assert main(["synth", "--category", "puppet"]) == 2
    assert "--out DIR" in capsys.readouterr().err


def test_write_dataset_mp4_and_refusals(tmp_path):
    import av

    root = S.write_dataset(
        tmp_path / "face_mp4",
        "face",
        num_train=1,
        num_test=2,
        num_frames=5,
        size=32,
        seed=0,
        num_cross_pairs=1,
        format="mp4",
        progress=False,
        clips_per_identity=1,
    )
    videos = sorted((root / "train").glob("*.mp4")) + sorted((root / "test").glob("*.mp4"))
    assert len(videos) == 3 and (root / "cross_identity" / "face-cross-00000.mp4").exists()
    with av.open(str(videos[0])) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape == (32, 32, 3)
    with pytest.raises(FommError, match="not empty"):
        S.write_dataset(root, "face", 1, 2, 5, 32, 0, 0, progress=False)
    with pytest.raises(FommError, match="cross-identity pairs"):
        S.write_dataset(tmp_path / "few", "face", 1, 1, 5, 32, 0, 3, progress=False)
    with pytest.raises(FommError):
        S.write_dataset(tmp_path / "bad", "face", 1, 2, 5, 33, 0, 0, format="mp4", progress=False)
    assert not (tmp_path / "few").exists() and not list(tmp_path.glob(".*.fomm-*.tmp*"))


def test_make_demo_assets(tmp_path):
    import av

    src, drv = S.make_demo_assets(tmp_path / "demo", size=64, num_frames=6)
    assert _read_png(src).shape == (64, 64, 3)
    with av.open(str(drv)) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert n == 6
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["driving.mp4", "source.png"]


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_end_to_end(tmp_path, capsys):
    from fomm.cli import main

    out = tmp_path / "faces"
    args = [
        "synth",
        "--category",
        "face",
        "--out",
        str(out),
        "--size",
        "32",
        "--train",
        "2",
        "--test",
        "2",
        "--frames",
        "3",
        "--seed",
        "1",
        "--cross-pairs",
        "1",
        "--quiet",
    ]
    assert main(args) == 0
    assert "wrote 5 face videos" in capsys.readouterr().out
    assert json.loads((out / "dataset.json").read_text())["counts"]["train"] == 2
    assert len(list((out / "cross_identity" / "face-cross-00000").iterdir())) == 3
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert main(args + ["--overwrite"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces"]


def test_cli_help_has_example(capsys):
    from fomm.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["synth", "--help"])
    assert exc.value.code == 0
    assert "examples:\n  fomm synth --category puppet" in capsys.readouterr().out


def test_max_cross_pairs_counts_pairs_of_distinct_identities():
    from fomm.data.synthetic import dataset as D

    assert D.max_cross_pairs(4) == 12 and D.max_cross_pairs(1) == 0
    assert D.max_cross_pairs(0) == 0 and D.max_cross_pairs(5, clips_per_identity=2) == 16
    for n, cpi in ((4, 1), (5, 2), (6, 3)):
        pairs = D.cross_pairs("face", n, D.max_cross_pairs(n, cpi), seed=0, clips_per_identity=cpi)
        assert len(pairs) == D.max_cross_pairs(n, cpi)
        with pytest.raises(FommError, match="allow only"):
            D.cross_pairs("face", n, len(pairs) + 1, seed=0, clips_per_identity=cpi)


def test_cli_lowers_the_default_cross_pairs_but_not_an_explicit_value(tmp_path, capsys):
    """--test 4 allows 12 pairs: the default 20 becomes 12 with one warning line; an explicit
    --cross-pairs 20 is one error line and writes nothing (issue #27)."""
    from fomm.cli import main

    args = ["synth", "--category", "face", "--size", "32", "--train", "1", "--test", "4", "--frames", "2"]
    args += ["--workers", "1", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    assert "(1 train, 4 test, 12 cross-identity)" in out
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("fomm: warning: --test 4 allows only 12 cross-identity pairs") and "default 20" in err
    assert json.loads((tmp_path / "a" / "dataset.json").read_text())["counts"]["cross_identity"] == 12
    assert main([*args, "--out", str(tmp_path / "b"), "--cross-pairs", "20"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "allow only 12" in err[0] and "--cross-pairs" in err[0]
    assert not (tmp_path / "b").exists()

"""The parts of ``fomm prepare`` one at a time, with numbers: ids, splits, shards, boxes, decoding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from face_clips import write_video  # noqa: I001 - tests/face_clips.py
from fomm.errors import FommError
from fomm.prepare.clips import ClipPlan, clip_box, decode_size, plan_clips, split_drifting, subject_size
from fomm.prepare.decode import NotAVideo, Reader, analysis_hw
from fomm.prepare.find import find_sources, source_id
from fomm.prepare.shots import ShotAnalysis
from fomm.prepare.split import assign_splits, in_shard, num_test, parse_shard
from fomm.prepare.track import Track, fit_to_shots, stride_for


def test_source_ids_and_discovery(tmp_path):
    assert source_id("phone/IMG 0001.MOV") == "phone_IMG_0001"
    assert source_id("a#b/c.d.mp4") == "a_b_c_d"
    for rel in ("a/b.mp4", "a_b.mkv", "x.mp4", "notes.txt", ".hidden.mp4", "out/old.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    sources, skipped = find_sources(tmp_path, tmp_path / "out")  # the output folder is not searched
    ids = {s.rel: s.id for s in sources}
    assert set(ids) == {"a/b.mp4", "a_b.mkv", "x.mp4"}
    assert ids["x.mp4"] == "x" and ids["a/b.mp4"].startswith("a_b-") and ids["a_b.mkv"].startswith("a_b-")
    assert ids["a/b.mp4"] != ids["a_b.mkv"]  # same cleaned name: told apart by a hash of the path
    assert skipped == [{"source": "notes.txt", "reason": "not-a-video", "detail": "a .txt file"}]
    listing = tmp_path / "list.txt"
    listing.write_text("# my videos\nx.mp4\n\nmissing.mp4\n")
    sources, skipped = find_sources(listing)
    assert [s.rel for s in sources] == ["x.mp4"] and skipped[0]["source"] == "missing.mp4"
    with pytest.raises(FommError, match="does not exist"):
        find_sources(tmp_path / "nope")


def test_split_by_source_is_stable():
    rels = [f"v{k}.mp4" for k in range(20)]
    splits = assign_splits(rels, 0.1, seed=0)
    assert sum(v == "test" for v in splits.values()) == 2
    assert assign_splits(list(reversed(rels)), 0.1, seed=0) == splits  # order does not matter
    assert assign_splits(rels, 0.1, seed=1) != splits
    more = assign_splits([*rels, *(f"w{k}.mp4" for k in range(20))], 0.05, seed=0)
    assert sum(more[r] != splits[r] for r in rels) <= 2  # adding videos moves few
    assert [num_test(n, 0.1) for n in (0, 1, 2, 9, 10, 26)] == [0, 0, 1, 1, 1, 3]
    assert num_test(5, 0.0) == 0


def test_shards_are_disjoint_and_cover_everything():
    rels = [f"folder/{k}.mp4" for k in range(50)]
    parts = [[r for r in rels if in_shard(r, (i, 4))] for i in range(4)]
    assert sorted(sum(parts, [])) == sorted(rels) and all(parts)
    assert parse_shard("2/4", {}) == (2, 4)
    assert parse_shard(None, {}) == (0, 1)
    assert parse_shard(None, {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}) == (3, 4)
    env = {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert parse_shard(None, env) == (3, 4)
    for bad in ("4/4", "1", "a/b", "-1/3"):
        with pytest.raises(FommError, match="--shard"):
            parse_shard(bad, {})


def test_clip_box_is_the_enlarged_square_union():
    boxes = np.array([[100, 100, 200, 180], [140, 110, 240, 200]], float)  # union 100..240 x 100..200
    assert clip_box(boxes, 0.0, (720, 1280)) == (100, 80, 240, 220)  # square of the larger side, centred
    assert clip_box(boxes, 0.1, (720, 1280)) == (86, 66, 254, 234)  # 140 x 1.2 = 168
    assert clip_box(boxes, 0.1, (200, 1280)) == (86, 32, 254, 200)  # moved inside the frame
    assert clip_box(boxes, 2.0, (200, 300)) == (70, 0, 270, 200)  # at most the shorter side
    assert subject_size(boxes, 0.4) == 180  # median larger side 100, x 1.8


def test_decode_size_shrinks_only_when_every_box_is_large():
    plans = [ClipPlan(0, 10, (100, 100, 612, 612)), ClipPlan(10, 20, (0, 0, 400, 400))]
    hw, scaled = decode_size(plans, (720, 1280), 256)
    assert hw == (460, 820)  # scale 256 / 400 = 0.64
    assert scaled[1].box == (0, 0, 256, 256) and scaled[0].box == (64, 64, 391, 391)
    assert decode_size(plans, (720, 1280), 384) == ((720, 1280), plans)  # 384 / 400 > 0.9: as is


def test_tracks_fit_to_shots():
    assert [stride_for(f) for f in (12, 24, 25, 30, 60)] == [1, 2, 2, 2, 4]
    boxes = np.arange(11 * 4, dtype=float).reshape(11, 4)
    tracks = fit_to_shots([Track(2, 13, boxes)], [(0, 7), (7, 20)], reach=1)
    assert [(t.start, t.end) for t in tracks] == [(1, 7), (7, 14)]
    assert (tracks[0].boxes[0] == boxes[0]).all() and (tracks[1].boxes[-1] == boxes[-1]).all()
    assert (tracks[1].boxes[0] == boxes[5]).all()  # frame 7 of the source


def test_reader_rotation_and_non_videos(tmp_path):
    frames = [np.full((64, 48, 3), 20 * t, np.uint8) for t in range(6)]
    frames[0][:8] = 255  # a bright top edge: must come out on top
    path = write_video(tmp_path / "phone.mp4", frames, rotation=90)  # stored landscape, shown portrait
    reader = Reader(path)
    assert reader.header.hw == (64, 48)
    got = list(reader.frames())
    assert got[0].shape == (64, 48, 3) and reader.count == 6 and reader.error is None
    assert got[0][:6].mean() > 200 and got[0][12:].mean() < 60
    assert list(reader.frames((32, 24)))[0].shape == (32, 24, 3)
    assert analysis_hw((1080, 1920), 360) == (360, 640) and analysis_hw((240, 320), 360) == (240, 320)
    png = cv2.imencode(".png", np.zeros((32, 32, 3), np.uint8))[1].tobytes()
    cases = [("empty.mp4", b"", "undecodable"), ("text.xyz", b"hello" * 100, "not-a-video")]
    for name, data, reason in [*cases, ("photo.mkv", png, "not-a-video")]:  # a PNG named .mkv
        (tmp_path / name).write_bytes(data)
        with pytest.raises(NotAVideo) as err:
            Reader(tmp_path / name)
        assert err.value.reason == reason


def test_a_wandering_subject_is_cut_where_it_leaves_its_first_box():
    # a 100 px box sliding 10 px a frame: IoU with the first box is (100 - d) / (100 + d)
    boxes = np.array([[10.0 * t, 0, 10.0 * t + 100, 100] for t in range(20)])
    pieces = split_drifting(Track(5, 25, boxes))
    # IoU(d = 60) = 0.25 keeps frame 6 in; d = 70 (0.18) starts the next clip there
    assert [(p.start, p.end) for p in pieces] == [(5, 12), (12, 19), (19, 25)]
    assert (pieces[1].boxes[0] == boxes[7]).all()
    assert [(p.start, p.end) for p in split_drifting(Track(0, 20, boxes[:1].repeat(20, 0)))] == [(0, 20)]


def test_a_too_short_clip_is_dropped_with_its_length_in_words():
    """prepare.json's reason stays "too-short"; its detail reads as a sentence (1 frame, 2 frames)."""
    boxes = np.array([[0.0, 0, 100, 100]])
    tracks = [Track(3, 4, boxes), Track(10, 12, boxes.repeat(2, 0))]
    kept, dropped = plan_clips(tracks, (200, 200), ShotAnalysis(), 1.0, margin=0.1, min_frames=32, min_size=8)
    assert kept == [] and [(d["reason"], d["start"], d["end"]) for d in dropped] == [
        ("too-short", 3, 4),
        ("too-short", 10, 12),
    ]
    assert [d["detail"] for d in dropped] == ["1 frame < --min-frames 32", "2 frames < --min-frames 32"]


def test_command_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    from fomm.cli import main

    (tmp_path / "empty").mkdir()
    out = tmp_path / "data"
    cases = [
        ([str(tmp_path / "nope")], "does not exist"),
        ([str(tmp_path / "empty")], "no files found"),
        ([str(tmp_path / "empty"), "--shard", "3/3"], "numbered 0 to N-1"),
        ([str(tmp_path / "empty"), "--margin", "-1"], "--margin must be"),
    ]
    for args, message in cases:
        assert main(["prepare", *args, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err
        assert not out.exists()


def test_motion_counts_a_small_moving_part_and_not_noise():
    from fomm.prepare.shots import STILL, ShotAnalysis

    rng = np.random.default_rng(0)
    still, mouth = ShotAnalysis(), ShotAnalysis()
    for t in range(10):
        frame = np.full((360, 640, 3), 100, np.uint8)
        noisy = np.clip(frame + rng.integers(-3, 4, frame.shape), 0, 255).astype(np.uint8)
        still.observe(t, noisy)
        if t % 2:
            frame[100:140, 100:140] = 130  # a 40 px part (2 x 2 of the 18 x 32 cells) opens and closes
        mouth.observe(t, frame)
    box = (0, 0, 640, 360)
    # the part changes by 30 grey levels in 4 of the 29 cells that change most (5 % of 576)
    assert mouth.motion(0, 10, box, (360, 640)) == pytest.approx(4 * 30 / 29, abs=0.05)
    assert still.motion(0, 10, box, (360, 640)) < 0.2 < STILL
    assert mouth.shots(10) == [(0, 10)] and mouth.motion(0, 1, box, (360, 640)) == 0.0

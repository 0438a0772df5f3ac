from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from fomm.data import video_io
from fomm.data.datasets import DatasetRepeater, FramesDataset, PairedDataset
from fomm.data.video_io import write_image, write_video
from fomm.errors import FommError

VOX_AUGMENT = {
    "flip_param": {"horizontal_flip": True, "time_flip": True},
    "jitter_param": {"brightness": 0.1, "contrast": 0.1, "saturation": 0.1, "hue": 0.1},
}

TRAIN_LENGTHS = {"clipA.mp4": 8, "clipB": 6, "clipC.png": 5, "clipD.gif": 4}


@pytest.fixture
def root(tmp_path, clips):
    """root/train: an mp4, a frame folder, a PNG strip and a GIF (+ a .npz to ignore); root/test."""
    root = tmp_path / "data"
    train, test = root / "train", root / "test"
    write_video(train / "clipA.mp4", clips.flat(8), fps=25)
    write_video(train / "clipB", clips.flat(6), fps=25)
    write_video(train / "clipC.png", clips.flat(5), fps=25)
    write_video(train / "clipD.gif", clips.flat(4), fps=10)
    np.savez(train / "clipA.npz", kp=np.zeros(3))
    (train / "README.txt").write_text("not a video")
    write_video(test / "t1.mp4", clips.flat(5), fps=25)
    write_video(test / "t2", clips.flat(3), fps=25)
    write_video(test / "t3.png", clips.flat(4), fps=25)
    return root


def _frames_of(item, clips):
    return clips.index_of(item["source"]), clips.index_of(item["driving"])


def test_train_items_are_two_different_frames(root, clips):
    ds = FramesDataset(root, frame_shape=(32, 32, 3), is_train=True)
    assert ds.videos == sorted(TRAIN_LENGTHS)  # .npz and .txt ignored
    assert len(ds) == 4
    for epoch in range(6):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert set(item) == {"driving", "source", "name"}
            assert item["source"].shape == item["driving"].shape == (3, 32, 32)
            assert item["source"].dtype == np.float32 and 0 <= item["source"].min() <= item["source"].max() <= 1
            s, d = _frames_of(item, clips)
            assert item["name"] == ds.videos[i]
            assert 0 <= s < d < TRAIN_LENGTHS[item["name"]]  # distinct, earlier one is the source


def test_test_items_are_whole_videos(root, clips):
    ds = FramesDataset(root, frame_shape=(32, 32, 3), is_train=False)
    assert ds.videos == ["t1.mp4", "t2", "t3.png"]
    item = ds[0]
    assert item["video"].shape == (3, 5, 32, 32) and item["video"].dtype == np.float32
    assert [clips.index_of(item["video"][:, t]) for t in range(5)] == [0, 1, 2, 3, 4]
    assert ds[2]["video"].shape == (3, 4, 32, 32) and ds[-1]["name"] == "t3.png"
    with pytest.raises(IndexError):
        ds[3]


def test_folder_videos_decode_only_two_frames(root, monkeypatch):
    ds = FramesDataset(root, frame_shape=(32, 32, 3))
    decoded = []
    original = video_io.images.decode_image
    monkeypatch.setattr(video_io.images, "decode_image", lambda p, *a: decoded.append(p) or original(p, *a))
    ds[ds.videos.index("clipB")]
    assert len(decoded) == 2


def test_short_file_videos_are_cached(root):
    ds = FramesDataset(root, frame_shape=(32, 32, 3))
    ds.set_epoch(0)
    ds[0]
    assert ds._cache is not None and root / "train" / "clipA.mp4" in ds._cache
    state = pickle.loads(pickle.dumps(ds))  # what a DataLoader worker receives
    assert state._cache is None and len(state) == 4
    no_cache = FramesDataset(root, frame_shape=(32, 32, 3), cache_bytes=0)
    no_cache.set_epoch(0)
    assert all(np.array_equal(no_cache[i]["source"], ds[i]["source"]) for i in range(4))
    assert no_cache._cache is None


def test_reproducible_randomness(root):
    a = FramesDataset(root, frame_shape=(32, 32, 3), augmentation_params=VOX_AUGMENT)
    b = FramesDataset(root, frame_shape=(32, 32, 3), augmentation_params=VOX_AUGMENT)
    a.set_epoch(3)
    b.set_epoch(3)
    for i in range(4):
        np.testing.assert_array_equal(a[i]["driving"], b[i]["driving"])
        np.testing.assert_array_equal(a[i]["source"], b[i]["source"])
        np.testing.assert_array_equal(a[i]["driving"], a[i]["driving"])  # same item, same draw
    b.set_epoch(4)
    assert any(not np.array_equal(a[i]["driving"], b[i]["driving"]) for i in range(4))

    c = FramesDataset(root, frame_shape=(32, 32, 3), augmentation_params=VOX_AUGMENT)  # no set_epoch
    torch.manual_seed(0)
    first = [c[i]["driving"] for i in range(4)]
    second = [c[i]["driving"] for i in range(4)]
    torch.manual_seed(0)
    again = [c[i]["driving"] for i in range(4)]
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert any(not np.array_equal(x, y) for x, y in zip(first, second))  # a new draw each epoch


MGIF_AUGMENT = {  # the original mgif config's keys, at 32x32
    "flip_param": {"horizontal_flip": True, "time_flip": True},
    "crop_param": {"size": [32, 32]},
    "resize_param": {"ratio": [0.9, 1.1]},
    "jitter_param": {"hue": 0.5},
}


@pytest.mark.parametrize("params", [VOX_AUGMENT, MGIF_AUGMENT])
def test_augmented_items_keep_shape_and_range(root, params):
    ds = FramesDataset(root, frame_shape=(32, 32, 3), augmentation_params=params)
    ds.set_epoch(0)
    for i in range(len(ds)):
        item = ds[i]
        for key in ("source", "driving"):
            assert item[key].shape == (3, 32, 32) and item[key].dtype == np.float32
            assert 0.0 <= item[key].min() and item[key].max() <= 1.0


def test_frames_of_another_size_are_resized(root, clips):
    with pytest.warns(UserWarning, match="another size than frame_shape 16x16"):
        ds = FramesDataset(root, frame_shape=(16, 16), is_train=True)
    ds.set_epoch(0)
    for i in range(len(ds)):
        item = ds[i]
        assert item["source"].shape == (3, 16, 16)
        s, d = _frames_of(item, clips)
        assert s < d < TRAIN_LENGTHS[item["name"]]
    with pytest.warns(UserWarning, match="resized"):
        test = FramesDataset(root, frame_shape=(16, 16), is_train=False)
    assert test[0]["video"].shape == (3, 5, 16, 16)


def test_id_sampling(tmp_path, clips):
    train = tmp_path / "vox" / "train"
    write_video(train / "idA#one#001.mp4", clips.flat(4), fps=25)
    write_video(train / "idA#two#001", clips.flat(3), fps=25)
    write_video(train / "idB#one#001.png", clips.flat(5), fps=25)
    write_video(tmp_path / "vox" / "test" / "idC#x.mp4", clips.flat(3), fps=25)
    ds = FramesDataset(tmp_path / "vox", frame_shape=(32, 32), id_sampling=True)
    assert ds.videos == ["idA", "idB"] and len(ds) == 2
    names = set()
    for epoch in range(16):
        ds.set_epoch(epoch)
        names.add(ds[0]["name"])
        assert ds[1]["name"] == "idB#one#001.png"
    assert names == {"idA#one#001.mp4", "idA#two#001"}
    test = FramesDataset(tmp_path / "vox", frame_shape=(32, 32), id_sampling=True, is_train=False)
    assert test.videos == ["idC#x.mp4"]  # test sets list videos, not identities


def test_repeater(root, clips):
    ds = FramesDataset(root, frame_shape=(32, 32, 3))
    rep = DatasetRepeater(ds, num_repeats=3)
    assert len(rep) == 12
    rep.set_epoch(0)
    assert ds._epoch == 0
    for i in range(4):
        rounds = [rep[i + 4 * k] for k in range(3)]
        assert {r["name"] for r in rounds} == {ds.videos[i]}
    # rounds draw different frames (clipA has 28 possible pairs)
    pairs = {_frames_of(rep[0 + 4 * k], clips) for k in range(3)}
    assert len(pairs) > 1
    with pytest.raises(FommError, match="num_repeats"):
        DatasetRepeater(ds, 0)


def test_split_without_train_test_folders(tmp_path, clips):
    root = tmp_path / "flat"
    names = [f"v{i}.mp4" for i in range(5)]
    for n in names:
        write_video(root / n, clips.flat(3), fps=25)
    np.savez(root / "v0.npz", x=1)
    train = FramesDataset(root, frame_shape=(32, 32), is_train=True, random_seed=0)
    test = FramesDataset(root, frame_shape=(32, 32), is_train=False, random_seed=0)
    assert len(train) == 4 and len(test) == 1
    assert sorted(train.videos + test.videos) == names
    # scikit-learn's train_test_split(sorted names, test_size=0.2, random_state=0)
    perm = np.random.RandomState(0).permutation(5)
    assert test.videos == [names[perm[0]]]
    assert FramesDataset(root, frame_shape=(32, 32), is_train=False, random_seed=0).videos == test.videos


def test_short_and_unreadable_videos_are_skipped(tmp_path, clips):
    train = tmp_path / "d" / "train"
    write_video(train / "good.mp4", clips.flat(4), fps=25)
    write_image(train / "still.png", clips.flat(1)[0])  # a 1-frame video
    (train / "broken.mp4").write_bytes(b"not a video")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = FramesDataset(tmp_path / "d", frame_shape=(32, 32))
    messages = " | ".join(str(w.message) for w in caught)
    assert "fewer than 2 frames" in messages and "still.png" in messages
    assert "unreadable" in messages and "broken.mp4" in messages
    assert ds.videos == ["good.mp4"]
    # test sets keep one-frame videos
    (tmp_path / "d" / "test").mkdir()
    write_image(tmp_path / "d" / "test" / "still.png", clips.flat(1)[0])
    assert FramesDataset(tmp_path / "d", frame_shape=(32, 32), is_train=False)[0]["video"].shape == (3, 1, 32, 32)


def test_dataset_errors(tmp_path, clips):
    with pytest.raises(FommError, match="does not exist"):
        FramesDataset(tmp_path / "missing")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    np.savez(tmp_path / "empty" / "train" / "a.npz", x=1)
    with pytest.raises(FommError, match="no training videos"):
        FramesDataset(tmp_path / "empty")
    with pytest.raises(FommError, match="no 'test' folder"):
        FramesDataset(tmp_path / "empty", is_train=False)
    write_image(tmp_path / "empty" / "train" / "still.png", clips.flat(1)[0])
    with pytest.warns(UserWarning), pytest.raises(FommError, match="at least 2 frames"):
        FramesDataset(tmp_path / "empty", frame_shape=(32, 32))
    with pytest.raises(FommError, match="frame_shape"):
        FramesDataset(tmp_path / "empty", frame_shape=(32, 32, 4))


def test_paired_dataset_random_pairs(root):
    test = FramesDataset(root, frame_shape=(32, 32), is_train=False)
    paired = PairedDataset(test, number_of_pairs=4, seed=0)
    assert len(paired) == 4 and len(set(paired.pairs)) == 4
    assert all(0 <= a < 3 and 0 <= b < 3 for a, b in paired.pairs)
    assert PairedDataset(test, number_of_pairs=4, seed=0).pairs == paired.pairs
    item = paired[0]
    assert set(item) == {"driving_video", "driving_name", "source_video", "source_name"}
    driving, source = paired.pairs[0]
    assert item["driving_name"] == test.videos[driving] and item["source_name"] == test.videos[source]
    assert item["driving_video"].shape[0] == 3 and item["driving_video"].shape[2:] == (32, 32)
    assert len(PairedDataset(test, number_of_pairs=100)) == 9  # all pairs of 3 videos


def test_paired_dataset_from_csv(root, tmp_path):
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text("distance,source,driving\n0,t1.mp4,t2\n1,t2,t1\n2,unknown.mp4,t1.mp4\n3,t3.png,t1.mp4\n")
    test = FramesDataset(root, frame_shape=(32, 32), is_train=False, pairs_list=csv_path)
    with pytest.warns(UserWarning, match="1 row"):
        paired = PairedDataset(test, number_of_pairs=2)
    assert len(paired) == 2
    assert (paired[0]["source_name"], paired[0]["driving_name"]) == ("t1.mp4", "t2")
    assert (paired[1]["source_name"], paired[1]["driving_name"]) == ("t2", "t1.mp4")  # names without extension match
    assert paired[0]["driving_video"].shape == (3, 3, 32, 32)

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\nx,y\n")
    with pytest.raises(FommError, match="source.*driving"):
        PairedDataset(FramesDataset(root, frame_shape=(32, 32), is_train=False, pairs_list=bad), 5)
    with pytest.raises(FommError, match="does not exist"):
        PairedDataset(FramesDataset(root, frame_shape=(32, 32), is_train=False, pairs_list=tmp_path / "no.csv"), 5)


def test_dataloader_with_two_workers_matches_single_process(root):
    ds = DatasetRepeater(FramesDataset(root, frame_shape=(32, 32, 3), augmentation_params=VOX_AUGMENT), 2)
    ds.set_epoch(1)
    batches = {}
    for workers in (0, 2):
        loader = DataLoader(ds, batch_size=3, shuffle=False, num_workers=workers)
        batches[workers] = list(loader)
    assert sum(len(b["name"]) for b in batches[2]) == 8
    first = batches[2][0]
    assert first["driving"].shape == (3, 3, 32, 32) and first["driving"].dtype == torch.float32
    for b0, b2 in zip(batches[0], batches[2]):
        assert b0["name"] == b2["name"]
        assert torch.equal(b0["driving"], b2["driving"]) and torch.equal(b0["source"], b2["source"])


def test_distributed_sampler(root):
    ds = FramesDataset(root, frame_shape=(32, 32, 3))
    sampler = DistributedSampler(ds, num_replicas=2, rank=0, shuffle=True, seed=0)
    sampler.set_epoch(0)
    ds.set_epoch(0)
    items = list(DataLoader(ds, batch_size=1, sampler=sampler))
    assert len(items) == 2 and len(list(iter(sampler))) == 2
    test = FramesDataset(root, frame_shape=(32, 32, 3), is_train=False)
    paired = PairedDataset(test, number_of_pairs=3)
    sampler = DistributedSampler(paired, num_replicas=2, rank=1, shuffle=False)
    got = list(DataLoader(paired, batch_size=1, sampler=sampler, num_workers=2))
    assert len(got) == 2 and got[0]["driving_video"].shape[1] == 3


def test_a_decompression_bomb_frame_is_one_error_line(tmp_path, clips, bomb_png):
    root = tmp_path / "data"
    write_video(root / "train" / "clip", clips.flat(3), fps=25)
    for t in (1, 2):  # frames 1 and 2 claim 1.6 gigapixels: any two sampled frames include one
        (root / "train" / "clip" / f"000000{t}.png").write_bytes(bomb_png.read_bytes())
    ds = FramesDataset(root, frame_shape=(32, 32, 3))
    with pytest.raises(FommError, match=r"000000[12]\.png is 40000x40000 pixels"):
        for i in range(len(ds)):
            ds[i]

"""Faces: landmarks, crops, tracking and paste-back, offline.

* :mod:`fomm.faces.landmarks`: dlib's 68 landmarks and identity embeddings (``fomm[faces]``).
* :mod:`fomm.faces.paste_back`: animated crops back into the full photo.

Automatic face crops for photos and videos:

The model works on square frames in which the head fills most of the picture (the VoxCeleb
crops); this package makes them:

* :mod:`fomm.faces.detect`: the face *trackers*. With ``pip install 'fomm[faces]'`` the face is
  the extent of dlib's 68 landmarks (steady from frame to frame); without it, OpenCV's bundled
  frontal Haar cascade. ``tracker="auto"`` picks landmarks when they are installed.
* :mod:`fomm.faces.track`: a video is read once; the face is found again on every frame near
  where it was, shot cuts are found from colour histograms, and each segment's face track is
  smoothed by a constant-velocity Kalman (RTS) smoother. One segment per shot, unless the face
  is lost for more than ``max_lost`` frames.
* :mod:`fomm.faces.plan`: square boxes (``scale`` x face size), :func:`crop_image` for a photo and
  :class:`CropPlan` (one box per frame) for a video, applied while streaming.
* :mod:`fomm.faces.files` and :mod:`fomm.faces.cli`: files and ``fomm crop``.

For the animation pipeline::

    source, box = crop_image(photo, 256, scale=1.8, required=True)   # box: for fomm.faces.paste_back
    plan = CropPlan.from_video(path, 256, **crop_options)            # {"scale", "smoothing", "boxes_json", "tracker"}
    frames = plan.crop_frames(video_io.iter_frames(path))
    print(f"tracker: {plan.tracker}")
"""

from fomm.faces.cli import add_crop_arguments, crop_options_from_args, register, run
from fomm.faces.detect import (
    CASCADES,
    DETECT_SIZE,
    MIN_FACE,
    TRACKERS,
    Face,
    detect_faces,
    iou,
    make_tracker,
    resolve_tracker,
)
from fomm.faces.files import crop_image_file, crop_video_file
from fomm.faces.landmarks import (
    FaceModels,
    best_frame_by_landmarks,
    closest_landmark_pose,
    faces_available,
    landmark_poses,
    require_faces,
    source_landmark_pose,
)
from fomm.faces.plan import (
    SCALE,
    Box,
    CropPlan,
    CropSegment,
    crop_box,
    crop_image,
    crop_inputs,
    plan_options,
    plan_video_crop,
    square_box,
)
from fomm.faces.track import DETECT_EVERY, MAX_LOST, SMOOTHING, ShotCutDetector, smooth_track

__all__ = [
    "FaceModels",
    "best_frame_by_landmarks",
    "closest_landmark_pose",
    "faces_available",
    "landmark_poses",
    "require_faces",
    "source_landmark_pose",
    "CASCADES",
    "DETECT_EVERY",
    "DETECT_SIZE",
    "MAX_LOST",
    "MIN_FACE",
    "SCALE",
    "SMOOTHING",
    "TRACKERS",
    "Box",
    "CropPlan",
    "CropSegment",
    "Face",
    "ShotCutDetector",
    "add_crop_arguments",
    "crop_box",
    "crop_image",
    "crop_image_file",
    "crop_inputs",
    "crop_options_from_args",
    "crop_video_file",
    "detect_faces",
    "iou",
    "make_tracker",
    "plan_options",
    "plan_video_crop",
    "register",
    "resolve_tracker",
    "run",
    "smooth_track",
    "square_box",
]

"""Image frames: what becomes a frame, kept by reference, and how it is encoded when shown."""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from dora_notebook.api.context import BaseContext
from dora_notebook.preview.frames import FrameEncoder, frame_from
from dora_notebook.preview.normalize import normalize

H, W = 6, 8


def photo(channels: int) -> np.ndarray:
    """Pixels whose colour says where they are (so that a swap of channels shows)."""
    rng = np.random.default_rng(channels)
    return rng.integers(0, 256, (H, W, channels), dtype=np.uint8)


def shown(payload: dict) -> Image.Image:
    """The picture a panel would show for ``payload``, decoded."""
    mime, data = FrameEncoder().encode(payload["data"])
    image = Image.open(io.BytesIO(data))
    assert image.format.lower() == mime.removeprefix("image/")
    return image


def event(value: object, **metadata: object) -> dict:
    return {"type": "INPUT", "id": "image", "value": value, "metadata": metadata}


@pytest.mark.parametrize(
    ("encoding", "channels", "as_rgb"),
    [
        ("rgb8", 3, lambda p: p),
        ("bgr8", 3, lambda p: p[:, :, ::-1]),
        ("rgba8", 4, lambda p: p),
        ("mono8", 1, lambda p: p[:, :, 0]),
    ],
)
def test_each_raw_encoding_of_a_dora_event_shows_its_pixels(encoding, channels, as_rgb) -> None:
    pixels = photo(channels)
    value = pa.array(pixels.ravel())
    payload = normalize(event(value, width=W, height=H, encoding=encoding))
    frame = payload["data"]
    assert (payload["type"], payload["width"], payload["height"]) == ("image", W, H)
    assert payload["encoding"] == encoding
    # Kept by reference: a view of the Arrow buffer, no copy, nothing encoded yet.
    assert np.shares_memory(frame.pixels, value.to_numpy(zero_copy_only=True))
    image = shown(payload)
    assert image.size == (W, H)
    assert image.format == "PNG"  # a small frame: PNG is smaller, and lossless
    expected = as_rgb(pixels)
    assert np.array_equal(np.asarray(image), expected)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_encoded_frames_pass_as_they_are(fmt: str) -> None:
    buffer = io.BytesIO()
    Image.fromarray(photo(3)).save(buffer, fmt.upper())
    raw = buffer.getvalue()
    payload = normalize(event(pa.array(np.frombuffer(raw, np.uint8)), encoding=fmt))
    mime, data = FrameEncoder().encode(payload["data"])
    assert (mime, data) == (f"image/{fmt}", raw)  # not decoded, not re-encoded


def test_metadata_forms_numpy_and_pil() -> None:
    pixels = photo(3)
    metadata = {"width": W, "height": H, "encoding": "rgb8"}
    for value in (pixels, pixels.tobytes(), pa.array(pixels.ravel())):
        assert np.array_equal(np.asarray(shown(normalize(value, metadata))), pixels)
    assert normalize(pixels)["encoding"] == "rgb8"  # HxWx3 uint8 as it is
    assert normalize(pixels[:, :, 0])["encoding"] == "mono8"
    assert normalize(pixels[:, :, :1])["encoding"] == "mono8"
    assert normalize({"type": "image", "data": pixels})["width"] == W
    image = Image.fromarray(pixels)
    assert normalize(image)["data"].pixels is image
    # Not images: other dtypes, shapes and channel counts stay data.
    assert normalize(pixels.astype(np.float32))["type"] == "json"
    assert normalize(np.zeros((2, 2, 2), np.uint8))["type"] == "json"
    assert normalize(np.arange(4, dtype=np.uint8))["type"] == "json"
    # A dora event without image metadata previews its value.
    assert normalize(event(pa.array([1, 2])))["type"] == "table"


def test_lossless_and_alpha_give_png_and_big_photos_jpeg() -> None:
    big = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    encoder = FrameEncoder()
    mime, data = encoder.encode(normalize(big)["data"])
    assert mime == "image/jpeg" and len(data) < big.nbytes / 3
    lossless = frame_from(big, {"width": 640, "height": 480, "encoding": "rgb8", "lossless": True})
    assert encoder.encode(lossless)[0] == "image/png"
    alpha = np.dstack([big, np.full((480, 640), 7, np.uint8)])
    assert encoder.encode(normalize(alpha)["data"])[0] == "image/png"  # JPEG has no alpha
    opaque = np.dstack([big, np.full((480, 640), 255, np.uint8)])
    assert encoder.encode(normalize(opaque)["data"])[0] == "image/jpeg"


def gradient(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 128)], -1).astype(np.uint8)


def jpeg_size(pixels: np.ndarray) -> int:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=80)
    return len(buffer.getvalue())


def encodings_taking(seconds: float) -> Callable[[], float]:
    """A timer by which every encoding takes ``seconds`` (the test does not hang on load)."""
    ticks = itertools.count()
    return lambda: next(ticks) * seconds


def test_a_smooth_picture_goes_png_when_smaller_and_is_checked_again() -> None:
    small = gradient(120, 160)
    now = [0.0]
    encoder = FrameEncoder(lambda: now[0], timer=encodings_taking(0.001))
    mime, png = encoder.encode(normalize(small)["data"])
    assert mime == "image/png" and len(png) < jpeg_size(small)  # it was the smaller
    assert encoder.encode(normalize(small)["data"])[0] == "image/png"  # kept: cheap too
    noise = normalize(np.random.default_rng(1).integers(0, 256, (120, 160, 3), np.uint8))
    assert encoder.encode(noise["data"])[0] == "image/png"  # not checked again yet
    now[0] = 10.0  # later: the choice is made again
    assert encoder.encode(noise["data"])[0] == "image/jpeg"


def test_a_video_keeps_to_jpeg_where_png_is_smaller_but_slow() -> None:
    # A 640x480 gradient is ~2x smaller as PNG, but ~6x slower to encode: at 30
    # frames a second that would be a seventh of a core.
    big = gradient(480, 640)
    encoder = FrameEncoder(lambda: 0.0, timer=encodings_taking(0.006))  # as measured here
    mime, png = encoder.encode(normalize(big)["data"])
    assert mime == "image/png" and len(png) < jpeg_size(big)  # this one is shown as PNG
    assert encoder.encode(normalize(big)["data"])[0] == "image/jpeg"  # the next as JPEG


def test_a_video_tries_png_less_often_while_it_stays_too_slow() -> None:
    # Each try costs a PNG encoding of the frame (and that frame waits for it): twice
    # RECHECK_S after the first (PNG was smaller, but slow), then 8 s, 16, and every 32 s
    # at most (RECHECK_MAX_S).
    big = normalize(gradient(480, 640))["data"]
    now = [0.0]
    tries = []
    slow = encodings_taking(0.006)

    def timer() -> float:
        tries.append(now[0])
        return slow()

    encoder = FrameEncoder(lambda: now[0], timer=timer)
    for frame in range(30 * 100):  # 100 s at 30 frames a second
        now[0] = frame / 30
        encoder.encode(big)
    began = sorted(set(tries))  # the timer is read twice per try
    assert [round(b - a) for a, b in itertools.pairwise(began)] == [4, 8, 16, 32, 32], began


def test_one_encoder_shows_frames_of_any_encoding_and_size_in_turn() -> None:
    """An encoder reads raw frames into one reused image; each frame is shown as it is."""
    encoder = FrameEncoder()
    pixels = photo(3)
    pil = Image.fromarray(pixels[:, :, ::-1])
    before = np.asarray(pil).copy()
    cases = [
        (frame_from(pixels, {"width": W, "height": H, "encoding": "rgb8"}), pixels),
        (frame_from(pixels, {"width": W, "height": H, "encoding": "bgr8"}), pixels[:, :, ::-1]),
        (normalize(pil)["data"], before),
        (frame_from(pixels[:4, :4].copy(), {"width": 4, "height": 4, "encoding": "rgb8"}), None),
        (normalize(pixels[:, :, 0])["data"], pixels[:, :, 0]),  # mono8, not contiguous
        (frame_from(pixels, {"width": W, "height": H, "encoding": "rgb8"}), pixels),
    ]
    cases[3] = (cases[3][0], pixels[:4, :4])
    for frame, expected in cases:
        mime, data = encoder.encode(frame)
        assert mime == "image/png"  # small frames: PNG, lossless
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), expected), frame
    assert np.array_equal(np.asarray(pil), before)  # a node's own image is never written to


def smooth_photo(h: int, w: int) -> np.ndarray:
    """A smooth picture whose channels differ everywhere (a swap of them shows)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 127 // (h + w)], -1).astype(np.uint8)


@pytest.mark.parametrize(
    ("encoding", "as_rgb"),
    [
        ("rgb8", lambda p: p),
        ("bgr8", lambda p: p),  # its bytes are the picture's, swapped: it shows the picture
        ("rgba8", lambda p: p),
        ("mono8", lambda p: np.repeat(p[:, :, :1], 3, axis=2)),
    ],
)
@pytest.mark.parametrize("encoder", ["simplejpeg", "pillow"])
def test_a_big_frame_shows_as_jpeg_from_its_pixels(encoding, as_rgb, encoder, monkeypatch) -> None:
    """A 640x480 frame is JPEG (PNG tried once, and too slow to keep), read as it is."""
    import simplejpeg  # a dependency of the [jupyter] extra: CI must have it

    from dora_notebook.preview import frames

    rgb = smooth_photo(480, 640)
    pixels = {
        "bgr8": rgb[:, :, ::-1],
        "rgba8": np.dstack([rgb, np.full((480, 640), 255, np.uint8)]),
        "mono8": rgb[:, :, 0],
    }.get(encoding, rgb)
    frame = frame_from(
        np.ascontiguousarray(pixels), {"width": 640, "height": 480, "encoding": encoding}
    )
    if encoder == "pillow":  # as without simplejpeg installed
        monkeypatch.setattr(frames, "_simplejpeg", lambda: None)
    else:
        assert frames._simplejpeg() is simplejpeg
        # The frame goes to simplejpeg as it is, never read into a Pillow image.
        monkeypatch.setattr(frames, "_pil_image", lambda *args: pytest.fail("read into Pillow"))
        monkeypatch.setattr(frames.FrameEncoder, "_png_of", lambda *args: b"\x89PNG" + bytes(9))
    coder = FrameEncoder(lambda: 0.0, timer=encodings_taking(0.006))
    coder.encode(frame)  # the first frame tries PNG too
    mime, data = coder.encode(frame)
    assert mime == "image/jpeg"
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.size == (640, 480)
    assert image.mode == ("L" if encoding == "mono8" else "RGB")
    shown_rgb = np.asarray(image.convert("RGB")).astype(int)
    error = np.abs(shown_rgb - as_rgb(rgb).astype(int)).mean()
    assert error < 2.0, error  # the picture itself, channels in their places
    assert len(data) < 0.1 * pixels.nbytes


@pytest.mark.parametrize(
    ("value", "metadata", "message"),
    [
        (bytes(5), {"width": 4, "height": 4, "encoding": "rgb8"}, "needs 48 bytes"),
        (bytes(4), {"width": 2, "height": 2, "encoding": "yuv420"}, "encoding 'yuv420' is not"),
        (bytes(4), {"height": 2, "encoding": "mono8"}, "'width' must be a positive int"),
        (bytes(4), {"width": 2, "height": 2, "encoding": "jpeg"}, "is not a jpeg file"),
        (pa.array([1.5]), {"width": 1, "height": 1, "encoding": "mono8"}, "UInt8Array"),
        ("text", {"width": 1, "height": 1, "encoding": "mono8"}, "must be a pyarrow UInt8Array"),
    ],
)
def test_bad_images_warn_once_and_show_nothing(value, metadata, message) -> None:
    reports = []

    class Recording(BaseContext):
        def _emit(self, kind, data):
            reports.append((kind, data))

    context = Recording("camera")
    for _ in range(3):
        context.preview(value, metadata=metadata)
        context.preview(event(value, **metadata))
    warnings = [data for kind, data in reports if kind == "warning"]
    assert [kind for kind, _ in reports] == ["warning"]  # once, and no preview
    assert message in warnings[0] and warnings[0].endswith("(nothing shown)")


def test_under_dora_rs_frames_and_points_leave_at_most_hz_times_a_second() -> None:
    # Exported nodes report as JSON, so a frame is encoded in the node: at most
    # preview_hz times a second, the newest of each slot, and the points batched.
    from dora_notebook.dora_rs.shim import DoraContext

    reports, later = [], []
    context = DoraContext("camera", [], report=lambda *args: reports.append(args[1:]))
    context._call_at = lambda when, function: later.append(function)  # type: ignore[method-assign]
    context._media._call_at = context._call_at
    for i in range(30):
        context.preview(np.full((H, W, 3), i, np.uint8), id="cam")
        context.plot("level", float(i))
    kinds = [kind for kind, _ in reports]
    assert kinds == ["preview"]  # the first at once, the rest held
    assert len(later) == 1  # one send scheduled, not one per call
    later.pop()()
    previews = [data for kind, data in reports if kind == "preview"]
    points = [data for kind, data in reports if kind == "plot"]
    assert len(previews) == 2 and len(points) == 1  # all 30 points in one report
    last = previews[-1]["payload"]
    assert (last["width"], last["height"], last["encoding"]) == (W, H, "rgb8")
    head, _, body = last["data"].partition(",")
    assert head in ("data:image/png;base64", "data:image/jpeg;base64")
    pixel = Image.open(io.BytesIO(base64.b64decode(body))).convert("RGB").getpixel((0, 0))
    assert pixel == (29, 29, 29)  # the newest frame
    assert points[0]["y"] == points[0]["x"] == [float(i) for i in range(30)]

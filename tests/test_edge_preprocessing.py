"""edge_demo/image_ops.py and edge_demo/preprocessing.py: pixel operations against
the numbers the Android sample's tests hold, and each card encoding's inputs."""

import wave

import numpy as np
import pytest
from PIL import Image

from discomkd_keras.edge_demo import image_ops, model_card
from discomkd_keras.edge_demo.preprocessing import InputError, Preprocessor
from discomkd_keras.edge_demo.spectrogram import SPECTROGRAM_PARAMS, log_mel_spectrogram
from helpers import card_fields


def card(encoding, kind="image", shape=(1, 4, 4, 3), **pre):
    return model_card.build_card(**card_fields(
        kind=kind, preprocessing={"encoding": encoding, **pre},
        input_tensor={"name": "x", "shape": list(shape), "dtype": "float32", "quantization": None}))


def collect(notes):
    return lambda message: notes.append(message)


def test_image_ops_match_the_android_sample():
    """The same numbers as InferenceContractTest.kt, for the same synthetic image."""
    y, x = np.mgrid[0:7, 0:10]
    img = np.stack([(x * 37 + y * 11) % 256, (x * 5 + y * 53) % 256, (x * x + 3 * y * y) % 256],
                   -1).astype(np.uint8)
    assert image_ops.centre_crop_box(7, 10, 3, 3) == (0, 1, 7, 7)
    assert image_ops.centre_crop_box(6, 4, 2, 2) == (1, 0, 4, 4)
    small, note = image_ops.fit(img, 3, 3)
    assert note == "resized 10x7 -> 3x3 (bilinear, centre-cropped to 7x7 first to keep the aspect ratio)."
    # Integer fixed point (image_ops.resize_bilinear), rounded after each pass; a value or
    # two differ by 1 from the float version before it, which did not round between passes.
    assert small.ravel().tolist() == [78, 54, 8, 157, 65, 21, 145, 76, 42, 102, 153, 34, 177, 164,
                                      47, 137, 175, 68, 126, 80, 85, 190, 91, 98, 83, 102, 119]
    assert image_ops.luma(small).ravel().tolist() == [56, 87, 93, 124, 155, 151, 94, 121, 98]
    assert image_ops.resize_bilinear(img[:2, :3], 3, 4).ravel().tolist() == [
        0, 0, 0, 23, 3, 1, 51, 7, 2, 74, 10, 4, 6, 27, 2, 29, 30, 3, 57, 34, 4, 80, 37, 6, 11, 53,
        3, 34, 56, 4, 62, 60, 5, 85, 63, 7]
    depth = np.array([[0, 500], [900, 4000]], np.uint16)
    big, note = image_ops.fit(depth, 4, 4, nearest=True)
    np.testing.assert_array_equal(big, np.kron(depth, np.ones((2, 2), np.uint16)))
    assert note == "resized 2x2 -> 4x4 (nearest neighbour)."
    assert image_ops.fit(depth, 2, 2) == (depth, None)


def test_rgb8_reads_pngs_and_refuses_grayscale(tmp_path):
    rgb = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
    Image.fromarray(rgb).save(tmp_path / "a.png")
    pre = Preprocessor(card("rgb8", scale=1 / 255))
    assert pre.suffixes() == (".png", ".jpg", ".jpeg", ".npy") and pre.takes_pixels
    [(name, x)] = pre.load(tmp_path / "a.png")
    assert name == str(tmp_path / "a.png")
    np.testing.assert_array_equal(x, rgb.astype(np.float32) * np.float32(1 / 255))
    Image.fromarray(rgb[..., 0]).save(tmp_path / "g.png")
    with pytest.raises(InputError) as info:
        pre.load(tmp_path / "g.png")
    assert str(info.value) == (f"{tmp_path / 'g.png'}: 1-channel 8-bit grayscale image, but this "
                               "model takes 3-channel 8-bit RGB images.")


def test_gray8_converts_rgb_to_luma_and_says_so(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "red.png")
    notes = []
    pre = Preprocessor(card("gray8", shape=(1, 4, 4, 1)), warn=collect(notes))
    [(_, x)] = pre.load(tmp_path / "red.png")
    # luma(200, 0, 0) = (19595 * 200 + 32768) >> 16 = 60; a uniform image resizes to itself.
    np.testing.assert_array_equal(x, np.full((4, 4, 1), 60, np.float32))
    assert notes == [f"{tmp_path / 'red.png'}: converted RGB to grayscale (ITU-R 601 luma), as the "
                     "model takes 1-channel images.",
                     f"{tmp_path / 'red.png'}: resized 8x8 -> 4x4 (bilinear)."]


def test_depth_reads_16_bit_pngs_and_npy_only(tmp_path):
    depth = np.array([[0, 1000], [3000, 9000]], np.uint16)
    Image.fromarray(depth).save(tmp_path / "d.png")
    pre = Preprocessor(card("depth_mm_uint16", shape=(1, 2, 2, 1), scale=1 / 4000, clip=[0.0, 1.0]))
    assert pre.describe() == "depth model (16-bit PNG in millimetres)"
    [(_, x)] = pre.load(tmp_path / "d.png")
    assert x[..., 0].tolist() == [[0.0, np.float32(1000) * np.float32(1 / 4000)],
                                  [np.float32(3000) * np.float32(1 / 4000), 1.0]]
    np.save(tmp_path / "d.npy", depth)
    np.testing.assert_array_equal(pre.load(tmp_path / "d.npy")[0][1], x)
    Image.fromarray(depth.astype(np.uint8)).save(tmp_path / "eight.png")
    with pytest.raises(InputError, match="8-bit grayscale image, but this depth model takes a "
                                         "1-channel 16-bit PNG"):
        pre.load(tmp_path / "eight.png")
    with pytest.raises(InputError, match="JPEG cannot hold 16-bit depth"):
        pre.load(tmp_path / "d.jpg")
    np.save(tmp_path / "f.npy", depth.astype(np.float32))
    with pytest.raises(InputError) as info:
        pre.load(tmp_path / "f.npy")
    assert str(info.value) == (f"{tmp_path / 'f.npy'}: expected raw integer values 0..65535 "
                               "(encoding depth_mm_uint16); got float32.")


def test_float_raw_images_are_channels_first_rows(tmp_path):
    rows = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)  # (N, C, H, W)
    np.save(tmp_path / "rows.npy", rows)
    pre = Preprocessor(card("float_raw", shape=(1, 4, 5, 3), scale=1.0, offset=0.0))
    assert pre.suffixes() == (".npy",) and not pre.takes_pixels
    out = pre.load(tmp_path / "rows.npy")
    assert [name for name, _ in out] == [f"{tmp_path / 'rows.npy'}[0]", f"{tmp_path / 'rows.npy'}[1]"]
    np.testing.assert_array_equal(np.stack([x for _, x in out]), rows.transpose(0, 2, 3, 1))
    np.save(tmp_path / "hwc.npy", rows[0].transpose(1, 2, 0))
    with pytest.raises(InputError) as info:
        pre.load(tmp_path / "hwc.npy")
    assert str(info.value) == (f"{tmp_path / 'hwc.npy'}: shape (4, 5, 3) does not fit this image "
                               "model (already-normalised .npy arrays): expected (3, 4, 5) (or a "
                               "batch of them).")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="holds Python objects; only plain numeric arrays are read"):
        pre.load(tmp_path / "objects.npy")


def test_wav_pcm16_goes_through_the_shared_spectrogram(tmp_path):
    pcm = np.round(8000 * np.sin(np.arange(8000) * 0.3)).astype("<i2")
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    pre = Preprocessor(card("wav_pcm16", kind="spectrogram", shape=(1, 40, 61, 1),
                            spectrogram=dict(SPECTROGRAM_PARAMS), mean=-2.0, std=4.0))
    assert pre.describe() == "audio model (8000 Hz mono WAV)"
    [(_, x)] = pre.load(tmp_path / "a.wav")
    want = (log_mel_spectrogram(pcm / np.float32(32768), 8000) - np.float32(-2.0)) / np.float32(4.0)
    np.testing.assert_array_equal(x, want[..., None])
    np.save(tmp_path / "a.npy", pcm)
    np.testing.assert_array_equal(pre.load(tmp_path / "a.npy")[0][1], x)
    with wave.open(str(tmp_path / "fast.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    with pytest.raises(InputError) as info:
        pre.load(tmp_path / "fast.wav")
    assert str(info.value) == (f"{tmp_path / 'fast.wav'}: sample rate 16000 Hz, but this model "
                               "expects 8000 Hz audio; resample it first (e.g. sox in.wav -r 8000 "
                               "out.wav).")

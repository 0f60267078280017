"""NumPy log-mel spectrograms and the WAV reader (synthetic signals; one real FSDD file)."""

import json
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from discomkd_keras.edge_demo.spectrogram import (
    SPECTROGRAM_PARAMS, fix_length, log_mel_spectrogram, mel_band_edges, mel_filterbank,
    num_frames, read_wav)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SR = 8000
N_FRAMES = 1 + (8000 - 256) // 128   # 61: frames of 256, hop 128, no centre padding


def tone(freq, seconds=1.0, amp=0.5, sr=SR):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_wav(path, data, channels=1, width=2, rate=SR):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(np.asarray(data).tobytes())
    return path


def test_shape_dtype_and_determinism():
    x = np.random.default_rng(0).standard_normal(5000).astype(np.float32) * 0.1
    a = log_mel_spectrogram(x, SR)
    assert a.shape == (40, N_FRAMES) == (40, 61)
    assert num_frames() == 61
    assert a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, log_mel_spectrogram(x.copy(), SR))


def test_params_dict_is_json_and_reproduces_defaults():
    x = tone(700.0, 0.8)
    json.dumps(SPECTROGRAM_PARAMS)
    np.testing.assert_array_equal(log_mel_spectrogram(x, SR),
                                  log_mel_spectrogram(x, SR, **SPECTROGRAM_PARAMS))


def test_batch_matches_single_clips():
    x = np.random.default_rng(1).standard_normal((3, 8000)).astype(np.float32) * 0.1
    batch = log_mel_spectrogram(x, SR, chunk=2)
    assert batch.shape == (3, 40, 61)
    for i in range(3):
        np.testing.assert_allclose(batch[i], log_mel_spectrogram(x[i], SR), atol=1e-4)


def test_filterbank_is_htk_triangles():
    fb = mel_filterbank()
    assert fb.shape == (40, 129)
    assert (fb >= 0).all() and fb.max() <= 1.0
    assert ((fb > 0).sum(axis=1) >= 2).all()            # no empty or one-bin filter
    edges = mel_band_edges()
    assert edges[0] == 0 and edges[-1] == pytest.approx(4000.0)
    mels = 2595 * np.log10(1 + edges / 700)
    np.testing.assert_allclose(np.diff(mels), np.diff(mels)[0])   # equally spaced in HTK mel


@pytest.mark.parametrize("band", [2, 10, 20, 30, 38])
def test_tone_at_band_centre_peaks_in_that_band(band):
    centre = mel_band_edges()[band + 1]
    energy = log_mel_spectrogram(tone(centre), SR).mean(axis=1)
    assert int(energy.argmax()) == band


def test_tone_peaks_in_a_band_containing_its_frequency():
    edges = mel_band_edges()
    for f in np.random.default_rng(2).uniform(100, 3900, 12):
        b = int(log_mel_spectrogram(tone(f), SR).mean(axis=1).argmax())
        assert edges[b] < f < edges[b + 2], (f, b)


def test_padding_at_the_end_and_centre_crop():
    short = tone(500.0, 0.5)
    np.testing.assert_array_equal(fix_length(short, 8000)[:4000], short)
    assert not fix_length(short, 8000)[4000:].any()
    # A short clip equals the same clip zero-padded by hand.
    np.testing.assert_array_equal(log_mel_spectrogram(short, SR),
                                  log_mel_spectrogram(np.concatenate([short, np.zeros(4000)]), SR))
    # Frames wholly in the padding hold only the log floor.
    spec = log_mel_spectrogram(short, SR)
    np.testing.assert_allclose(spec[:, -5:], np.log(np.float32(1e-6)), rtol=1e-6)
    long = np.arange(10000, dtype=np.float32)
    np.testing.assert_array_equal(fix_length(long, 8000), long[1000:9000])
    np.testing.assert_array_equal(log_mel_spectrogram(long / 1e4, SR),
                                  log_mel_spectrogram(long[1000:9000] / 1e4, SR))


def test_wrong_sample_rate_is_an_error_naming_both_rates():
    with pytest.raises(ValueError, match=r"16000.*8000"):
        log_mel_spectrogram(tone(440.0, sr=16000), 16000)


def test_wav_round_trip_16_and_8_bit(tmp_path):
    pcm = np.random.default_rng(3).integers(-32768, 32767, 1234, endpoint=True).astype("<i2")
    pcm[:2] = [-32768, 32767]
    x, rate = read_wav(write_wav(tmp_path / "a.wav", pcm))
    assert rate == SR and x.dtype == np.float32
    np.testing.assert_array_equal(x, pcm.astype(np.float32) / 32768)
    u8 = np.arange(256, dtype=np.uint8)
    x8, _ = read_wav(write_wav(tmp_path / "b.wav", u8, width=1))
    np.testing.assert_array_equal(x8, (u8.astype(np.float32) - 128) / 128)
    assert x8.min() == -1.0 and x8.max() < 1.0


def test_read_wav_rejects_stereo(tmp_path):
    p = write_wav(tmp_path / "stereo.wav", np.zeros(200, "<i2"), channels=2)
    with pytest.raises(ValueError, match="stereo.wav.*2 channels"):
        read_wav(p)


def test_read_wav_rejects_24_bit(tmp_path):
    p = write_wav(tmp_path / "deep.wav", np.zeros(300, np.uint8), width=3)
    with pytest.raises(ValueError, match="deep.wav.*24-bit"):
        read_wav(p)


def test_read_wav_rejects_truncated_files(tmp_path):
    full = write_wav(tmp_path / "full.wav", np.ones(1000, "<i2")).read_bytes()
    cut_data = tmp_path / "cut_data.wav"
    cut_data.write_bytes(full[:-500])
    with pytest.raises(ValueError, match="cut_data.wav.*truncated"):
        read_wav(cut_data)
    cut_header = tmp_path / "cut_header.wav"
    cut_header.write_bytes(full[:20])
    with pytest.raises(ValueError, match="cut_header.wav"):
        read_wav(cut_header)


def test_read_wav_rejects_non_wav_and_compressed(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 10)
    with pytest.raises(ValueError, match="notes.wav"):
        read_wav(text)
    # A RIFF/WAVE header with format tag 3 (IEEE float), which PCM-only readers refuse.
    data = np.zeros(100, np.float32).tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, SR, SR * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    flt = tmp_path / "float.wav"
    flt.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(ValueError, match="float.wav"):
        read_wav(flt)


def test_unknown_window_and_mel_scale():
    with pytest.raises(ValueError, match="window"):
        log_mel_spectrogram(tone(300.0), SR, window="hamming")
    with pytest.raises(ValueError, match="htk"):
        log_mel_spectrogram(tone(300.0), SR, mel_scale="slaney")
    a = log_mel_spectrogram(tone(300.0), SR, window="hann_symmetric")
    assert a.shape == (40, 61) and not np.array_equal(a, log_mel_spectrogram(tone(300.0), SR))


@pytest.mark.skipif(not (SHARED / "fsdd" / "recordings").is_dir(),
                    reason=f"real data not found at {SHARED} (FSDD recordings); see shared/data/README.md")
def test_real_fsdd_file():
    x, rate = read_wav(SHARED / "fsdd" / "recordings" / "7_jackson_12.wav")
    assert rate == 8000 and x.ndim == 1 and np.abs(x).max() <= 1.0 and len(x) > 1000
    spec = log_mel_spectrogram(x, rate)
    assert spec.shape == (40, 61) and np.isfinite(spec).all()

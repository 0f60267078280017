"""Live camera frames for the device demo: picamera2 (the Raspberry Pi camera) or
else OpenCV. Both are optional; neither is needed unless the camera mode
(`discomkd-edge camera`, `classify.py --camera`) is used."""

import numpy as np


class CameraError(RuntimeError):
    """No camera, or one that stopped; the message is one line."""


def camera_frames(index=0):
    """RGB uint8 frames (H, W, 3), forever, from picamera2 or else OpenCV camera `index`."""
    try:
        from picamera2 import Picamera2
    except ImportError:
        Picamera2 = None
    if Picamera2 is not None:
        yield from _picamera_frames(Picamera2)
        return
    try:
        import cv2
    except ImportError:
        raise CameraError("the camera mode needs picamera2 (Raspberry Pi OS: sudo apt install "
                          "python3-picamera2, and make the venv with --system-site-packages) or "
                          "OpenCV (pip install opencv-python-headless); neither is installed.") \
            from None
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise CameraError(f"OpenCV cannot open camera {index}.")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                raise CameraError(f"camera {index} stopped delivering frames.")
            yield np.ascontiguousarray(frame[..., ::-1])  # BGR -> RGB
    finally:
        capture.release()


def _picamera_frames(picamera_class):
    camera = picamera_class()
    # libcamera's "RGB888" is stored B, G, R in memory; reversed below.
    camera.configure(camera.create_preview_configuration(
        main={"format": "RGB888", "size": (640, 480)}))
    camera.start()
    try:
        while True:
            yield np.ascontiguousarray(camera.capture_array()[..., :3][..., ::-1])
    finally:
        camera.stop()

"""Geometry of the synthetic RGB-D scenes: the six shapes as signed distance
fields, poses, and sphere tracing of a batch of rays (rgbd_renderer.py draws
the scenes and simulates the sensors)."""

import numpy as np

# Sphere tracing.
MAX_STEPS = 64
HIT_TOLERANCE = 0.3  # a ray hits when the distance is below this many pixel footprints

# Bounding-sphere radius of each shape in object coordinates (with a margin).
BOUND = np.array([0.75, 1.04, 0.85, 0.99, 0.8, 1.07]) * 1.02


def sdf(label, x, y, z):
    """Signed distance (or a 1-Lipschitz lower bound of it, which sphere
    tracing accepts) to shape `label`, in object coordinates, y the axis."""
    if label == 0:  # sphere
        return np.sqrt(x * x + y * y + z * z) - 0.75
    if label == 1:  # cube, half-size 0.6 (Chebyshev distance: exact inside, a bound outside)
        return np.maximum(np.maximum(np.abs(x), np.abs(y)), np.abs(z)) - 0.6
    if label == 2:  # cylinder, radius 0.6, half-height 0.6
        return np.maximum(np.sqrt(x * x + z * z) - 0.6, np.abs(y) - 0.6)
    if label == 3:  # cone, apex at y=0.7, base radius 0.7 at y=-0.7: half-angle atan(1/2)
        rho = np.sqrt(x * x + z * z)
        lateral = rho * np.float32(2 / np.sqrt(5)) + (y - np.float32(0.7)) * np.float32(1 / np.sqrt(5))
        return np.maximum(lateral, np.float32(-0.7) - y)
    if label == 4:  # torus, ring radius 0.55, tube radius 0.25
        ring = np.sqrt(x * x + z * z) - np.float32(0.55)
        return np.sqrt(ring * ring + y * y) - np.float32(0.25)
    if label == 5:  # square pyramid, base half-width 0.65 at y=-0.55, apex at y=0.8
        nx, ny = np.float32(1.35 / np.hypot(1.35, 0.65)), np.float32(0.65 / np.hypot(1.35, 0.65))
        slope = ny * (y - np.float32(0.8))
        faces = np.maximum(nx * np.abs(x), nx * np.abs(z)) + slope
        return np.maximum(faces, np.float32(-0.55) - y)
    raise ValueError(f"unknown shape label {label}")


def _axis_angle(axis, angle):
    """(B, 3, 3) rotations by `angle` about unit `axis` (B, 3) (Rodrigues' formula)."""
    x, y, z = axis.T
    zero = np.zeros_like(x)
    cross = np.stack([np.stack([zero, -z, y], 1), np.stack([z, zero, -x], 1), np.stack([-y, x, zero], 1)], 1)
    sin, cos = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + sin * cross + (1 - cos) * (cross @ cross)


def poses(u, tilt_deg):
    """(B, 3, 3) rotations: a full spin about the shape's own axis (y), then a
    tilt of that axis by up to `tilt_deg` about a random horizontal axis;
    the tilted axis is uniform on its spherical cap (uniform on SO(3) at 180)."""
    spin = _axis_angle(np.tile([0.0, 1.0, 0.0], (len(u.matrix), 1)), 2 * np.pi * u.take())
    cos_tilt = 1 - u.take() * (1 - np.cos(np.radians(tilt_deg)))
    azimuth = 2 * np.pi * u.take()
    horizontal = np.stack([np.cos(azimuth), np.zeros_like(azimuth), np.sin(azimuth)], 1)
    return _axis_angle(horizontal, np.arccos(cos_tilt)) @ spin


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def lerp(bounds, u):
    return bounds[0] + (bounds[1] - bounds[0]) * u


def march(label, origin, direction, t_near, t_far, footprint):
    """Sphere-trace rays (object coordinates); return the hit distance (inf = miss)."""
    n = len(t_near)
    t_hit = np.full(n, np.inf, np.float32)
    idx = np.arange(n)
    (ox, oy, oz), (dx, dy, dz) = origin.T, direction.T
    t, t_far = t_near.copy(), t_far.copy()
    tol = np.float32(HIT_TOLERANCE * footprint)
    f = np.zeros(n, np.float32)
    for _ in range(MAX_STEPS):
        f = sdf(label, ox + t * dx, oy + t * dy, oz + t * dz)
        # Tolerance grows with distance (a fraction of a pixel's footprint):
        # grazing rays at silhouettes then stop after a few steps.
        hit = f < tol * t
        t_hit[idx[hit]] = t[hit]
        alive = ~hit & (t < t_far)
        if not alive.all():
            idx, ox, oy, oz, dx, dy, dz, t, t_far, f = (
                a[alive] for a in (idx, ox, oy, oz, dx, dy, dz, t, t_far, f))
        if not len(idx):
            break
        t = t + f
    # Rays still marching after MAX_STEPS run along a surface: count the
    # close ones as hits rather than punching holes into the silhouette.
    close = f < 3 * tol * t
    t_hit[idx[close]] = t[close]
    return t_hit


def normals(label, x, y, z):
    """Unit SDF gradients (tetrahedral central differences), object coordinates."""
    h = np.float32(1e-3)
    grad = np.zeros((len(x), 3), np.float32)
    for k in ((1, -1, -1), (-1, -1, 1), (-1, 1, -1), (1, 1, 1)):
        f = sdf(label, x + h * k[0], y + h * k[1], z + h * k[2])
        grad += f[:, None] * np.array(k, np.float32)
    return unit(grad + np.float32(1e-12))

"""The renderer behind the built-in synthetic RGB-D set: six 3D primitives seen
by a colour camera and a noisy depth sensor, ray-marched in NumPy.

Scene model (per sample, everything drawn from the sample's own random stream):

* Camera: a pinhole at the origin looking down +z (x right, y up), square
  image of `size` x `size` pixels with a horizontal field of view of
  `fov_deg`. Depth is the z coordinate (distance along the optical axis) as a
  real depth sensor reports it, not the distance along the ray.
* Object: one of `CLASS_NAMES` (sphere, cube, cylinder, cone, torus, pyramid),
  defined as a signed distance field in object coordinates, at a random 3D
  rotation (a full spin about the shape's axis, the axis tilted up to
  `pose_tilt_deg` from upright in a random direction), a random scale and a
  random position (0.9-1.6 m away, anywhere in the middle of the view, so it is
  sometimes cropped by the border).
  It is rendered by sphere tracing all rays of a batch of images at once,
  started at the ray's entry into the object's bounding sphere.
* Background: a textured plane behind the object, tilted up to
  `bg_tilt_deg`, at a random gap behind the object's bounding sphere.
* Appearance: random colours and a random texture (plain, stripes, 3D checker
  or smooth "noise" of sinusoids) on the object (in object coordinates, so it
  turns with the object) and on the background; Lambertian shading from a
  random light direction plus a random ambient term; random exposure and
  per-pixel sensor noise; 8-bit output.
* Depth sensor: depth-dependent noise (sigma = a + b z^2, as structured-light
  and time-of-flight sensors show), a per-sample calibration error (scale
  bias), invalid (0) pixels at depth discontinuities, random dropout pixels,
  random elliptical holes, and output in whole millimetres (uint16, 0 =
  missing), clipped to `MAX_DEPTH_M`.

Difficulty knobs (`SCENE_DEFAULTS`, each overridable through `render_rgbd`'s
`knobs`; the loader's cache file name includes the overrides). They make each modality informative but
neither sufficient, so that the modalities complement each other:

* Both: pose (`pose_tilt_deg`), size and placement (`object_scale_m`,
  `object_distance_m`, `object_offset`) set how ambiguous the views are.
* RGB hides the shape when the object is camouflaged (`p_camouflage`: it
  takes the background's colour and texture at its pixels, up to a
  `camouflage_jitter` brightness change) and/or lit flat (`p_flat_light`:
  ambient light only, no shading); then only the other cue, or nothing at all,
  reveals the silhouette in RGB, while depth still sees it. Otherwise the
  object's colour stands `object_color_distance` away from the background's;
  clutter comes from textures (`object_texture_contrast`,
  `bg_texture_contrast`), `ambient`, `exposure` and `rgb_noise`.
* Depth hides the shape when the sensor is bad: noise strength
  `depth_noise_b`, holes (`depth_holes_max`, `depth_hole_radius`), dropout
  (`depth_dropout`), edge invalidation (`depth_edge_drop`), a small gap to
  the background (`bg_gap_m`, the object blends into the wall), and, with
  probability `p_depth_failure`, a failing sensor (interference: much more
  noise and dropout) or a transparent object (the sensor measures the
  background through it, as real sensors do with glass); RGB is unaffected by
  all of these.
"""

import json

import numpy as np

from discomkd_keras.data.rgbd_geometry import BOUND, lerp, march, normals, poses, unit

CLASS_NAMES = ("sphere", "cube", "cylinder", "cone", "torus", "pyramid")
MAX_DEPTH_M = 4.0

# Calibrated (issue 11, validation split) so that the default run's twins reach about
# RGB 0.64 and depth 0.79 weighted F1 at 48x48 in 10 epochs: RGB with room to be helped,
# depth able to help. The values before the calibration are in the git history.
SCENE_DEFAULTS = {
    "fov_deg": 55.0,
    "object_distance_m": [0.9, 1.6],
    "object_scale_m": [0.25, 0.4],  # metres per unit of the shapes' object coordinates
    # Objects stand roughly upright (like things on a table, seen from the side);
    # full 3D rotations (180) would make many silhouettes ambiguous (a cylinder
    # seen end-on is a disc, a pyramid from above a square).
    "pose_tilt_deg": 25.0,
    "object_offset": 0.2,  # max |centre| in units of the half image, so objects may be cropped
    "bg_gap_m": [0.3, 1.2],  # background plane distance beyond the object's bounding sphere
    "bg_tilt_deg": 25.0,

    # RGB knobs.
    "p_camouflage": 0.35,
    "camouflage_jitter": 0.12,  # relative brightness difference object vs background when camouflaged
    "p_flat_light": 0.35,
    "object_texture_contrast": [0.0, 0.3],  # fraction of the way between its two colours
    "bg_texture_contrast": [0.0, 0.25],
    # Unless camouflaged, the object's colour differs from the background's by this
    # much (RGB distance, full scale = 1), so it is seen wherever shading is flat.
    "object_color_distance": [0.35, 0.7],
    "ambient": [0.1, 0.45],
    "exposure": [0.75, 1.2],
    "rgb_noise": [0.005, 0.02],  # per-pixel Gaussian noise std, fraction of full scale

    # Depth knobs.
    "depth_noise_a": 0.004,  # metres
    "depth_noise_b": [0.001, 0.004],  # metres per metre^2
    "depth_scale_bias": 0.03,  # +- relative calibration error per sample
    "depth_edge_jump_m": 0.08,  # a neighbour differing by more is a discontinuity
    "depth_edge_drop": [0.2, 0.6],  # probability an edge pixel is invalid
    "depth_dropout": [0.0, 0.005],  # probability any pixel is invalid
    "depth_holes_max": 1,  # elliptical holes per image: 0..depth_holes_max
    "depth_hole_radius": [0.03, 0.08],  # in units of the image size
    "p_depth_failure": 0.05,  # interference or a transparent object (half each)
    "failure_noise_gain": 4.0,
    "failure_dropout": 0.35,
    "transparent_drop": 0.05,  # pixels lost where the sensor looks through the object
}

CHUNK = 64  # samples rendered together (memory ~ CHUNK * size^2 * 100 bytes)
# Per-sample random draws: counts of uniform and standard-normal scalars.
_N_UNIFORM = 72
_N_NORMAL = 32


def _sample_streams(seed, n):
    """One independent random stream per sample, so a sample's scene does not
    depend on which other samples are rendered with it."""
    return [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, i))) for i in range(n)]


class _Columns:
    """Hands out consecutive columns of a (B, K) matrix of per-sample draws, in
    the order asked for (a fixed order, so the draws of every sample line up)."""

    def __init__(self, matrix):
        self.matrix, self.used = matrix, 0

    def take(self, k=None):
        width = 1 if k is None else k
        if self.used + width > self.matrix.shape[1]:
            raise RuntimeError("per-sample draw budget exhausted; raise _N_UNIFORM/_N_NORMAL")
        cols = self.matrix[:, self.used:self.used + width]
        self.used += width
        return cols[:, 0] if k is None else cols


def _texture_params(u, g, scale, contrast, color_distance, away_from=None):
    """Colours and texture of one surface for a batch: a dict of (B, ...) arrays.

    With `away_from` (B, 3), the main colour is placed at a random distance of
    `color_distance` from it in a random direction (the way that stays
    furthest inside the RGB cube), so the surface stands out against it.
    """
    color_a, color_b = u.take(3), u.take(3)
    direction = unit(g.take(3)) * lerp(color_distance, u.take())[:, None]
    if away_from is not None:
        plus, minus = np.clip(away_from + direction, 0, 1), np.clip(away_from - direction, 0, 1)
        further = np.linalg.norm(plus - away_from, axis=1) >= np.linalg.norm(minus - away_from, axis=1)
        color_a = np.where(further[:, None], plus, minus)
    return {
        "kind": np.minimum((u.take() * 4).astype(np.int64), 3),  # plain, stripes, checker, noise
        "color_a": color_a,
        # The second colour moves only part of the way from the first one.
        "color_b": color_a + lerp(contrast, u.take())[:, None] * (color_b - color_a),
        "freq": scale * (1.0 + 2.5 * u.take()),
        "phase": 2 * np.pi * u.take(3),
        "axes": unit(g.take(9).reshape(-1, 3, 3)),
    }


def _albedo(tex, pick, x, y, z):
    """Colour of a textured surface at points (x, y, z); `pick` maps a (B, ...)
    parameter to the shape of the points (per-sample broadcast or gather)."""
    kind = pick(tex["kind"])
    waves = []
    for k in range(3):
        axis = tex["axes"][:, k]
        arg = pick(tex["freq"]) * (pick(axis[:, 0]) * x + pick(axis[:, 1]) * y + pick(axis[:, 2]) * z)
        waves.append(np.sin(arg + pick(tex["phase"][:, k])))
    # Soft-edged patterns (clipped, steep sinusoids) alias less at 32-64 px.
    stripes = np.clip(0.5 + 1.5 * waves[0], 0.0, 1.0)
    checker = np.clip(0.5 + 4.0 * waves[0] * waves[1] * waves[2], 0.0, 1.0)
    noise = 0.5 + (waves[0] + waves[1] + waves[2]) / 6.0
    mix = np.select([kind == 1, kind == 2, kind == 3], [stripes, checker, noise], 0.0)
    a, b = pick(tex["color_a"]), pick(tex["color_b"])
    return (a + (b - a) * mix[..., None]).astype(np.float32)


def _render_chunk(label, streams, size, k):
    """Render B samples of one shape with the scene knobs `k`; return
    (rgb uint8 (B,H,W,3), depth mm uint16 (B,H,W))."""
    b_count, p_count = len(streams), size * size
    f32 = np.float32
    # Every sample draws from its stream in the same order and amounts.
    uniform = np.stack([s.random(_N_UNIFORM) for s in streams])
    normal = np.stack([s.standard_normal(_N_NORMAL) for s in streams])
    pix_normal = np.stack([s.standard_normal((4, p_count), np.float32) for s in streams])
    pix_uniform = np.stack([s.random((3, p_count), np.float32) for s in streams])
    u, g = _Columns(uniform), _Columns(normal)

    # Camera rays, shared by all samples.
    half = np.tan(np.radians(k["fov_deg"]) / 2)
    coords = (np.arange(size) + 0.5) / size * 2 - 1
    px, py = np.meshgrid(coords * half, -coords * half)
    rays = unit(np.stack([px.ravel(), py.ravel(), np.ones(p_count)], axis=1))  # (P, 3)
    footprint = 2 * half / size

    # Pose: rotation, scale, centre (placed by its projection, then distance).
    rot = poses(u, k["pose_tilt_deg"])
    scale = lerp(k["object_scale_m"], u.take())
    dist = lerp(k["object_distance_m"], u.take())
    offset = k["object_offset"] * (2 * u.take(2) - 1) * half
    centre = np.stack([offset[:, 0] * dist, offset[:, 1] * dist, dist], axis=1)

    # Background plane: normal within bg_tilt_deg of +z, at a gap behind the
    # object's bounding sphere so the two never intersect.
    tilt = np.radians(k["bg_tilt_deg"]) * np.sqrt(u.take())
    azimuth = 2 * np.pi * u.take()
    bg_normal = np.stack([np.sin(tilt) * np.cos(azimuth), np.sin(tilt) * np.sin(azimuth), np.cos(tilt)], 1)
    bg_offset = (bg_normal * centre).sum(1) + scale * BOUND[label] + lerp(k["bg_gap_m"], u.take())
    t_bg = bg_offset[:, None] / (rays @ bg_normal.T).T  # (B, P): all rays hit it (tilt + FOV < 90 deg)
    bg_points = [t_bg * rays[:, axis] for axis in range(3)]

    # Rays in object coordinates: p = R^T (t d - c) / s = o + (t / s) R^T d.
    obj_origin = -np.einsum("bji,bj->bi", rot, centre) / scale[:, None]
    obj_dirs = np.einsum("bji,pj->bpi", rot, rays)  # (B, P, 3), unit length
    along = np.einsum("bi,bpi->bp", obj_origin, obj_dirs)
    disc = along ** 2 - ((obj_origin ** 2).sum(1) - BOUND[label] ** 2)[:, None]
    cand_b, cand_p = np.nonzero(disc > 0)
    root = np.sqrt(disc[cand_b, cand_p])
    t_near = np.maximum(-along[cand_b, cand_p] - root, 0.0).astype(f32)
    t_far = (-along[cand_b, cand_p] + root).astype(f32)
    t_local = march(label, obj_origin[cand_b].astype(f32), obj_dirs[cand_b, cand_p].astype(f32),
                     t_near, t_far, footprint)
    hit = np.isfinite(t_local)
    hit_b, hit_p, t_local = cand_b[hit], cand_p[hit], t_local[hit]
    hit_local = obj_origin[hit_b] + t_local[:, None] * obj_dirs[hit_b, hit_p]  # (n, 3)
    t_world = t_local * scale[hit_b]
    z_obj = t_world * rays[hit_p, 2]

    # Appearance.
    bg_tex = _texture_params(u, g, 3.0, k["bg_texture_contrast"], k["object_color_distance"])
    obj_tex = _texture_params(u, g, 3.0, k["object_texture_contrast"], k["object_color_distance"],
                              away_from=bg_tex["color_a"])
    light = unit(np.stack([2 * u.take() - 1, 2 * u.take() - 1, -(0.3 + 0.7 * u.take())], 1))
    ambient = lerp(k["ambient"], u.take())
    flat = u.take() < k["p_flat_light"]
    ambient = np.where(flat, 1.0, ambient)
    camouflage = u.take() < k["p_camouflage"]
    jitter = 1 + k["camouflage_jitter"] * (2 * u.take() - 1)
    exposure = lerp(k["exposure"], u.take())
    rgb_noise = lerp(k["rgb_noise"], u.take())

    def shade(normal_dot_light, sample):
        return ambient[sample] + (1 - ambient[sample]) * np.maximum(normal_dot_light, 0.0)

    per_sample = lambda a: a[:, None]  # noqa: E731
    bg_albedo = _albedo(bg_tex, per_sample, *bg_points)  # (B, P, 3)
    # The plane faces the camera (normal -bg_normal), lit like any surface.
    bg_shade = shade(-(bg_normal * light).sum(1), np.arange(b_count))
    rgb = bg_albedo * bg_shade[:, None, None]

    at_hit = lambda a: a[hit_b]  # noqa: E731
    obj_albedo = _albedo(obj_tex, at_hit, *hit_local.T)
    # Camouflage: the object wears the background's colour and texture at the
    # very pixels it covers, so only shading (if any) outlines it.
    obj_albedo = np.where(camouflage[hit_b, None], bg_albedo[hit_b, hit_p] * jitter[hit_b, None], obj_albedo)
    world_normal = np.einsum("nij,nj->ni", rot[hit_b], normals(label, *hit_local.T.astype(f32)))
    rgb[hit_b, hit_p] = obj_albedo * shade((world_normal * light[hit_b]).sum(1), hit_b)[:, None]
    rgb = rgb * exposure[:, None, None] + rgb_noise[:, None, None] * pix_normal[:, 1:].transpose(0, 2, 1)
    rgb8 = np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8).reshape(b_count, size, size, 3)

    # Depth sensor.
    depth_failure = u.take() < k["p_depth_failure"]
    interference = depth_failure & (u.take() < 0.5)
    transparent = depth_failure & ~interference
    # A transparent (or mirror-like) object is invisible to the sensor, which
    # measures the background through it: depth loses the shape, RGB keeps it.
    solid = ~transparent[hit_b]
    z = bg_points[2].copy()
    z[hit_b[solid], hit_p[solid]] = z_obj[solid]
    z = z.reshape(b_count, size, size)
    sigma_b = lerp(k["depth_noise_b"], u.take()) * np.where(interference, k["failure_noise_gain"], 1.0)
    bias = 1 + k["depth_scale_bias"] * (2 * u.take() - 1)
    sigma = k["depth_noise_a"] + sigma_b[:, None, None] * z ** 2
    measured = z * bias[:, None, None] + sigma * pix_normal[:, 0].reshape(b_count, size, size)

    # Invalid pixels: depth discontinuities (mixed returns at silhouettes)...
    jump = np.zeros(z.shape, bool)
    for axis in (1, 2):
        step = np.abs(np.diff(z, axis=axis)) > k["depth_edge_jump_m"]
        jump |= np.pad(step, [(0, 0)] + [(0, 1) if a == axis else (0, 0) for a in (1, 2)])
        jump |= np.pad(step, [(0, 0)] + [(1, 0) if a == axis else (0, 0) for a in (1, 2)])
    draw_edge, draw_drop, draw_glint = (pix_uniform[:, i].reshape(b_count, size, size) for i in range(3))
    missing = jump & (draw_edge < lerp(k["depth_edge_drop"], u.take())[:, None, None])
    # ...random dropout (worse under interference)...
    dropout = np.where(interference, k["failure_dropout"], lerp(k["depth_dropout"], u.take()))
    missing |= draw_drop < dropout[:, None, None]
    # ...the odd lost return through a transparent object (a faint trace of it)...
    behind_glass = np.zeros((b_count, p_count), bool)
    behind_glass[hit_b[~solid], hit_p[~solid]] = True
    missing |= behind_glass.reshape(z.shape) & (draw_glint < k["transparent_drop"])
    # ...and elliptical holes (specular or dark patches, occluded projector).
    n_holes = np.floor(u.take() * (k["depth_holes_max"] + 1))
    grid = (np.arange(size) + 0.5) / size
    for hole in range(int(k["depth_holes_max"])):
        cy, cx, angle = u.take(), u.take(), np.pi * u.take()
        ra, rb = lerp(k["depth_hole_radius"], u.take()), lerp(k["depth_hole_radius"], u.take())
        dy = grid[None, :, None] - cy[:, None, None]
        dx = grid[None, None, :] - cx[:, None, None]
        cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
        inside = ((dx * cos + dy * sin) / ra[:, None, None]) ** 2 + \
            ((dy * cos - dx * sin) / rb[:, None, None]) ** 2 < 1
        missing |= inside & (hole < n_holes)[:, None, None]
    depth_mm = np.round(np.clip(measured, 0.0, MAX_DEPTH_M) * 1000)
    depth_mm[missing] = 0
    return rgb8, depth_mm.astype(np.uint16)


def scene_knobs(overrides=None):
    """SCENE_DEFAULTS with `overrides` ({name: number or [low, high]}) applied,
    checked: a ValueError names an unknown knob or a value of the wrong form."""
    knobs = json.loads(json.dumps(SCENE_DEFAULTS))
    for name, value in (overrides or {}).items():
        if name not in knobs:
            raise ValueError(f"Unknown scene knob {name!r}; knobs: {', '.join(sorted(knobs))}.")
        if isinstance(knobs[name], list):
            if not (isinstance(value, (list, tuple)) and len(value) == 2
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                    and 0 <= value[0] <= value[1]):
                raise ValueError(f"Scene knob {name!r} is a range: give two numbers "
                                 f"0 <= low <= high (default {knobs[name]}); got {value!r}.")
            value = [float(v) for v in value]
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"Scene knob {name!r} takes one number >= 0 "
                             f"(default {knobs[name]}); got {value!r}.")
        knobs[name] = value
    return knobs


def render_rgbd(labels, seed, size=48, knobs=None):
    """Render one RGB-D sample per label.

    Args:
        labels: int array (N,) of class indices into `CLASS_NAMES`.
        seed: non-negative int; the same (labels, seed, size, knobs) give identical output.
        size: image height and width in pixels.
        knobs: overrides of SCENE_DEFAULTS (see `scene_knobs`).

    Returns:
        (rgb, depth): uint8 (N, size, size, 3) and uint16 (N, size, size) depth
        in millimetres, 0 where the sensor returned nothing.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or (len(labels) and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES))):
        raise ValueError(f"labels must be a 1-D array of ints in [0, {len(CLASS_NAMES) - 1}]")
    if int(size) != size or size < 8:
        raise ValueError(f"size must be an integer >= 8; got {size!r}")
    size = int(size)
    k = scene_knobs(knobs)
    streams = _sample_streams(int(seed), len(labels))
    rgb = np.zeros((len(labels), size, size, 3), np.uint8)
    depth = np.zeros((len(labels), size, size), np.uint16)
    # One shape per chunk: the tracer then evaluates a single distance function.
    for label in range(len(CLASS_NAMES)):
        rows = np.flatnonzero(labels == label)
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            rgb[chunk], depth[chunk] = _render_chunk(label, [streams[i] for i in chunk], size, k)
    return rgb, depth

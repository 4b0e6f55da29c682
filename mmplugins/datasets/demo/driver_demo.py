"""Deterministic driver-inattention detection demo data (COCO format).

A stand-in for the 2021 driver-inattention detection challenge data, which
cannot be downloaded here: synthetic cabin-camera frames of one face with
the challenge's 7 classes and a comparable imbalance (the real training set
had 419k ``eye_opened`` instances against 12k ``phone`` and 10k ``cigar``;
the defaults below give about 28 : 1 on the training split).

Every image holds one ``face``, two eyes (both ``eye_opened`` or both
``eye_closed``) and one mouth (``mouth_opened`` / ``mouth_closed``); a
``phone`` is held next to the face and a ``cigar`` sticks out of a mouth
corner in a few images. Objects have distinctive shapes and colours so that
a small detector learns them from scratch in a few hundred iterations.

The validation split uses boosted rare-class rates (``val_rates``) so that
the per-class AP of ``phone`` / ``cigar`` is measured on enough instances;
the training split keeps the imbalance the diet sampler exists for.

Layout::

    out/annotations/instances_train.json   out/train/000000.png ...
    out/annotations/instances_val.json     out/val/000000.png ...

Same arguments -> byte-identical files (numpy PCG64 + OpenCV PNG).
"""
import json
import os
import os.path as osp
from typing import Dict, Optional

import cv2
import numpy as np

__all__ = ['DRIVER_CLASSES', 'TRAIN_RATES', 'VAL_RATES', 'make_driver_demo',
           'render_driver_image']

#: The 7 classes of the challenge, in label order.
DRIVER_CLASSES = ('eye_opened', 'eye_closed', 'mouth_opened', 'mouth_closed',
                  'face', 'phone', 'cigar')

#: Per-image probabilities of the training split (imbalanced).
TRAIN_RATES = dict(eye_closed=0.15, mouth_opened=0.25, phone=0.06,
                   cigar=0.05)
#: Per-image probabilities of the validation split (rare classes boosted).
VAL_RATES = dict(eye_closed=0.35, mouth_opened=0.4, phone=0.25, cigar=0.25)


def _clip_box(x0, y0, x1, y1, size):
    x0, y0 = max(0.0, x0), max(0.0, y0)
    x1, y1 = min(float(size), x1), min(float(size), y1)
    return [x0, y0, x1 - x0, y1 - y0]


def _background(rng, size):
    # a cabin-ish background: smooth two-colour gradient plus clutter
    c0 = rng.uniform(20, 120, 3)
    c1 = rng.uniform(20, 120, 3)
    t = np.linspace(0, 1, size, dtype=np.float32)
    if rng.random() < 0.5:
        t = t[:, None, None] * np.ones((1, size, 1), np.float32)
    else:
        t = t[None, :, None] * np.ones((size, 1, 1), np.float32)
    img = (c0 * (1 - t) + c1 * t).astype(np.float32)
    for _ in range(rng.integers(2, 6)):
        color = tuple(float(v) for v in rng.uniform(0, 160, 3))
        p0 = rng.integers(0, size, 2)
        p1 = p0 + rng.integers(10, size // 2, 2)
        if rng.random() < 0.5:
            cv2.rectangle(img, tuple(int(v) for v in p0),
                          tuple(int(v) for v in p1), color, -1)
        else:
            cv2.line(img, tuple(int(v) for v in p0),
                     tuple(int(v) for v in p1), color,
                     int(rng.integers(1, 5)))
    return img


def render_driver_image(rng: np.random.Generator, size: int,
                        rates: Dict[str, float]):
    """Draw one frame; returns ``(uint8 HxWx3 BGR image, [(label, xywh)])``.

    ``rates`` gives the probability of ``eye_closed``, ``mouth_opened``,
    ``phone`` and ``cigar`` per image.
    """
    img = _background(rng, size)
    anns = []
    # face geometry, kept inside the frame
    fw = rng.uniform(0.40, 0.58) * size
    fh = fw * rng.uniform(1.18, 1.32)
    cx = rng.uniform(fw / 2 + 2, size - fw / 2 - 2)
    cy = rng.uniform(fh / 2 + 2, size - fh / 2 - 2)
    skin = np.array([rng.uniform(90, 170), rng.uniform(120, 190),
                     rng.uniform(160, 235)])
    cv2.ellipse(img, (int(cx), int(cy)), (int(fw / 2), int(fh / 2)), 0, 0,
                360, tuple(float(v) for v in skin), -1)
    anns.append(('face', _clip_box(cx - fw / 2, cy - fh / 2, cx + fw / 2,
                                   cy + fh / 2, size)))

    eyes_closed = rng.random() < rates['eye_closed']
    ew, eh = 0.2 * fw, 0.1 * fh
    ey = cy - 0.14 * fh + rng.uniform(-0.02, 0.02) * fh
    for side in (-1, 1):
        ex = cx + side * 0.21 * fw + rng.uniform(-0.02, 0.02) * fw
        c = (int(ex), int(ey))
        axes = (max(2, int(ew / 2)), max(1, int(eh / 2)))
        if eyes_closed:
            # lid line in the skin: a dark arc, no white
            cv2.ellipse(img, c, axes, 0, 10, 170, (30, 30, 40),
                        max(1, int(eh / 4)))
            label = 'eye_closed'
        else:
            cv2.ellipse(img, c, axes, 0, 0, 360, (235, 235, 235), -1)
            iris = (float(rng.uniform(20, 90)), float(rng.uniform(30, 90)),
                    float(rng.uniform(20, 70)))
            cv2.circle(img, c, max(1, int(eh / 2)), iris, -1)
            cv2.circle(img, c, max(1, int(eh / 4)), (10, 10, 10), -1)
            label = 'eye_opened'
        anns.append((label, _clip_box(ex - ew / 2, ey - eh / 2, ex + ew / 2,
                                      ey + eh / 2, size)))

    mouth_open = rng.random() < rates['mouth_opened']
    mw = 0.36 * fw
    mh = (0.17 if mouth_open else 0.06) * fh
    mx = cx + rng.uniform(-0.02, 0.02) * fw
    my = cy + 0.26 * fh
    lips = (60.0, 50.0, float(rng.uniform(150, 210)))
    axes = (max(2, int(mw / 2)), max(1, int(mh / 2)))
    if mouth_open:
        cv2.ellipse(img, (int(mx), int(my)), axes, 0, 0, 360, lips, -1)
        inner = (max(1, int(mw / 2) - 3), max(1, int(mh / 2) - 3))
        cv2.ellipse(img, (int(mx), int(my)), inner, 0, 0, 360,
                    (25, 20, 40), -1)
        anns.append(('mouth_opened',
                     _clip_box(mx - mw / 2, my - mh / 2, mx + mw / 2,
                               my + mh / 2, size)))
    else:
        cv2.ellipse(img, (int(mx), int(my)), axes, 0, 0, 360, lips, -1)
        anns.append(('mouth_closed',
                     _clip_box(mx - mw / 2, my - mh / 2, mx + mw / 2,
                               my + mh / 2, size)))

    if rng.random() < rates['cigar']:
        side = 1 if rng.random() < 0.5 else -1
        length = rng.uniform(0.32, 0.42) * fw
        thick = max(4.0, 0.07 * fw)
        ang = np.deg2rad(rng.uniform(10, 35))
        x0 = mx + side * (mw / 2 - 2)
        y0 = my
        x1 = x0 + side * np.cos(ang) * length
        y1 = y0 + np.sin(ang) * length
        cv2.line(img, (int(x0), int(y0)), (int(x1), int(y1)),
                 (225, 235, 240), int(thick))
        tip = (int(x0 + side * np.cos(ang) * length * 0.8),
               int(y0 + np.sin(ang) * length * 0.8))
        cv2.line(img, tip, (int(x1), int(y1)), (0, 90, 255), int(thick))
        pad = thick / 2
        anns.append(('cigar', _clip_box(
            min(x0, x1) - pad, min(y0, y1) - pad, max(x0, x1) + pad,
            max(y0, y1) + pad, size)))

    if rng.random() < rates['phone']:
        side = 1 if rng.random() < 0.5 else -1
        pw, ph = 0.3 * fw, 0.52 * fh
        px = cx + side * (fw / 2 - 0.05 * fw) + side * pw / 2
        py = cy + rng.uniform(-0.05, 0.1) * fh
        x0, y0, x1, y1 = px - pw / 2, py - ph / 2, px + pw / 2, py + ph / 2
        cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)),
                      (35, 35, 35), -1)
        cv2.rectangle(img, (int(x0 + 3), int(y0 + 5)),
                      (int(x1 - 3), int(y1 - 6)), (230, 170, 60), -1)
        anns.append(('phone', _clip_box(x0, y0, x1, y1, size)))

    # global lighting and sensor noise
    img = img * rng.uniform(0.65, 1.15) + rng.normal(0, 6, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    anns = [(label, box) for label, box in anns if box[2] > 1 and box[3] > 1]
    return img, anns


def _make_split(out_dir, split, num, size, rates, rng):
    img_dir = osp.join(out_dir, split)
    os.makedirs(img_dir, exist_ok=True)
    images, annotations = [], []
    counts = {c: 0 for c in DRIVER_CLASSES}
    for i in range(num):
        img, anns = render_driver_image(rng, size, rates)
        name = f'{i:06d}.png'
        ok, buf = cv2.imencode('.png', img)
        if not ok:
            raise RuntimeError(f'cannot encode {name}')
        with open(osp.join(img_dir, name), 'wb') as f:
            f.write(buf.tobytes())
        images.append(dict(id=i + 1, file_name=name, height=size,
                           width=size))
        for label, box in anns:
            box = [round(float(v), 2) for v in box]
            annotations.append(dict(
                id=len(annotations) + 1, image_id=i + 1,
                category_id=DRIVER_CLASSES.index(label) + 1, bbox=box,
                area=round(box[2] * box[3], 2), iscrowd=0))
            counts[label] += 1
    coco = dict(
        images=images, annotations=annotations,
        categories=[dict(id=k + 1, name=c)
                    for k, c in enumerate(DRIVER_CLASSES)])
    ann_file = osp.join(out_dir, 'annotations', f'instances_{split}.json')
    os.makedirs(osp.dirname(ann_file), exist_ok=True)
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    return dict(num_images=num, instances=counts, ann_file=ann_file,
                img_dir=img_dir)


def make_driver_demo(out_dir: str,
                     num_train: int = 600,
                     num_val: int = 200,
                     size: int = 192,
                     seed: int = 0,
                     train_rates: Optional[Dict[str, float]] = None,
                     val_rates: Optional[Dict[str, float]] = None) -> dict:
    """Write the demo dataset; returns a summary (counts per split).

    Args:
        out_dir (str): Output folder (created).
        num_train (int): Training images. Defaults to 600.
        num_val (int): Validation images. Defaults to 200.
        size (int): Square image side in pixels. Defaults to 192.
        seed (int): Random seed; same seed -> same bytes. Defaults to 0.
        train_rates (dict, optional): Per-image probabilities of
            ``eye_closed``, ``mouth_opened``, ``phone``, ``cigar`` for the
            training split. Defaults to :data:`TRAIN_RATES`.
        val_rates (dict, optional): Same for validation. Defaults to
            :data:`VAL_RATES`.
    """
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'{name} must be an int >= 1, got {value!r}')
    if not isinstance(size, int) or size < 64:
        raise ValueError(f'size must be an int >= 64, got {size!r}')
    rates = []
    for given, default in ((train_rates, TRAIN_RATES),
                           (val_rates, VAL_RATES)):
        r = dict(default)
        r.update(given or {})
        bad = {k: v for k, v in r.items()
               if k not in default or not 0 <= v <= 1}
        if bad:
            raise ValueError(f'rates {bad}: expected keys {list(default)} '
                             'with probabilities in [0, 1]')
        rates.append(r)
    # independent streams per split: changing num_train keeps val identical
    train_rng, val_rng = (np.random.default_rng([seed, k]) for k in (0, 1))
    summary = dict(out_dir=out_dir, size=size, seed=seed,
                   classes=list(DRIVER_CLASSES))
    summary['train'] = _make_split(out_dir, 'train', num_train, size,
                                   rates[0], train_rng)
    summary['val'] = _make_split(out_dir, 'val', num_val, size, rates[1],
                                 val_rng)
    return summary

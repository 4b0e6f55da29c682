"""Synthetic mask-wearing faces in the competition's folder layout.

No download, deterministic bytes for a given seed, small enough to train a
tiny timm model on a CPU in a couple of minutes. Each person is a cartoon
face on a noisy background; the labels are visible but noisy:

* mask: *wear* covers nose and mouth, *incorrect* covers only mouth and chin
  (nose visible), *not wear* shows nose and mouth; mask colour varies;
* gender: hair length (long for female) with overlapping distributions;
* age: hair greyness and wrinkles grow with the age in years plus noise, so
  ages near 30 and 60 are genuinely ambiguous; ``>=60`` is rare (~8 %), as
  in the real data.

Layout written under ``out_dir``::

    images/{id:06d}_{gender}_Asian_{age}/
        {mask1..mask5,incorrect_mask,normal}.{jpg|jpeg|png}
    eval/images/{hash}.jpg, eval/info.csv (ImageID,ans=0), eval/gt.csv
"""
import csv
import hashlib
import os
import os.path as osp
from typing import Dict

import numpy as np

from mmplugins.models.heads.mask_label import age_to_label, encode

IMAGE_STEMS = ('mask1', 'mask2', 'mask3', 'mask4', 'mask5', 'incorrect_mask',
               'normal')
STEM_MASK = (0, 0, 0, 0, 0, 1, 2)
#: probabilities of the age classes <30, 30-59, >=60 (real data: ~8 % old)
AGE_CLASS_PROBS = (0.46, 0.46, 0.08)
FEMALE_PROB = 0.6
SKIN = ((180, 200, 235), (150, 175, 215), (120, 150, 195), (90, 120, 170))
MASK_COLOURS = ((245, 245, 245), (230, 200, 140), (40, 40, 40),
                (200, 170, 230), (150, 200, 150))


def _person(rng: np.random.Generator, pid: int) -> dict:
    age_cls = int(rng.choice(3, p=AGE_CLASS_PROBS))
    age = int(rng.integers(*((18, 30), (30, 60), (60, 76))[age_cls]))
    female = bool(rng.random() < FEMALE_PROB)
    return dict(
        pid=pid,
        age=age,
        gender='female' if female else 'male',
        skin=np.array(SKIN[int(rng.integers(len(SKIN)))], np.float64),
        hair_len=float(np.clip(rng.normal(0.8 if female else 0.3, 0.15), 0,
                               1.1)),
        grey=float(np.clip((age - 22) / 45 + rng.normal(0, 0.1), 0, 1)),
        wrinkles=int(np.clip(round((age - 25) / 12 + rng.normal(0, .7)), 0,
                             5)),
        bg=rng.integers(0, 256, 3).astype(np.float64))


def render_face(p: dict, mask: int, size: int,
                rng: np.random.Generator) -> np.ndarray:
    """One BGR uint8 image of person ``p`` with mask state ``mask``."""
    import cv2
    s = size / 64.
    img = np.empty((size, size, 3), np.float64)
    img[:] = p['bg'] * rng.uniform(0.8, 1.1)
    img = img.astype(np.uint8)
    cx = size / 2 + rng.normal(0, 3 * s)
    cy = size / 2 + rng.normal(0, 3 * s)
    sc = s * rng.uniform(0.9, 1.1)
    fw, fh = 17 * sc, 23 * sc  # face half-width / half-height

    def pt(x, y):
        return int(round(cx + x * sc)), int(round(cy + y * sc))

    hair = (np.array((20, 35, 60)) * (1 - p['grey']) +
            np.array((225, 225, 225)) * p['grey'])
    hair = tuple(int(v) for v in np.clip(hair + rng.normal(0, 8, 3), 0, 255))
    # long hair falls behind the face down the sides
    if p['hair_len'] > 0.45:
        bottom = -14 + p['hair_len'] * 40
        cv2.rectangle(img, pt(-21, -18), pt(21, bottom), hair, -1)
    skin = tuple(int(v) for v in np.clip(p['skin'] + rng.normal(0, 6, 3), 0,
                                         255))
    cv2.ellipse(img, pt(0, 0), (int(fw), int(fh)), 0, 0, 360, skin, -1)
    # hair cap
    cv2.ellipse(img, pt(0, -12), (int(fw + 2 * sc), int(13 * sc)), 0, 180,
                360, hair, -1)
    for k in range(p['wrinkles']):  # forehead wrinkles
        y = -8 + 2.2 * k
        cv2.line(img, pt(-8, y), pt(8, y), (70, 90, 120), 1)
    for x in (-7, 7):  # eyes
        cv2.circle(img, pt(x, -3), max(1, int(2 * sc)), (30, 30, 30), -1)
    cv2.line(img, pt(0, 1), pt(0, 7), (60, 80, 120), max(1, int(sc)))  # nose
    cv2.line(img, pt(-5, 13), pt(5, 13), (50, 50, 190), max(1, int(2 * sc)))
    if mask != 2:
        colour = MASK_COLOURS[int(rng.integers(len(MASK_COLOURS)))]
        colour = tuple(int(v) for v in np.clip(
            np.array(colour) + rng.normal(0, 10, 3), 0, 255))
        top = 3 if mask == 0 else 10  # incorrect: below the nose
        top += rng.normal(0, 1)
        cv2.rectangle(img, pt(-14, top), pt(14, 21), colour, -1)
        cv2.line(img, pt(-14, top), pt(-19, top - 3), colour, 1)
        cv2.line(img, pt(14, top), pt(19, top - 3), colour, 1)
    noise = rng.normal(0, 10, img.shape)
    img = np.clip(img.astype(np.float64) * rng.uniform(0.85, 1.15) + noise, 0,
                  255).astype(np.uint8)
    return img


def _write(path: str, img: np.ndarray) -> None:
    import cv2
    ext = osp.splitext(path)[1].lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in ('.jpg', '.jpeg') \
        else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise RuntimeError(f'could not encode {path}')
    with open(path, 'wb') as f:
        f.write(buf.tobytes())


def make_mask_demo(out_dir: str,
                   num_persons: int = 300,
                   eval_persons: int = 20,
                   size: int = 64,
                   seed: int = 0) -> Dict[str, int]:
    """Write the demo dataset; returns counts of what was written.

    Args:
        out_dir (str): Target folder (created; existing files overwritten).
        num_persons (int): Persons of ``images/`` (7 images each).
        eval_persons (int): Persons of the unlabeled ``eval/`` set, whose
            true labels go to ``eval/gt.csv``.
        size (int): Image side in pixels (>= 32).
        seed (int): Everything (attributes, jitter, noise) derives from it,
            person by person, so the bytes are identical for a seed.
    """
    if num_persons < 1 or eval_persons < 0:
        raise ValueError(f'num_persons must be >= 1 and eval_persons >= 0, '
                         f'but got {num_persons}, {eval_persons}')
    if size < 32:
        raise ValueError(f'size must be >= 32, but got {size}')
    img_root = osp.join(out_dir, 'images')
    os.makedirs(img_root, exist_ok=True)
    counts = dict(persons=0, images=0, eval_images=0)
    for pid in range(num_persons):
        rng = np.random.default_rng([seed, pid])
        p = _person(rng, pid)
        # the real data mixes extensions; keep a few .png / .jpeg persons
        ext = '.png' if pid % 10 == 3 else '.jpeg' if pid % 13 == 5 else '.jpg'
        pdir = osp.join(img_root,
                        f'{pid + 1:06d}_{p["gender"]}_Asian_{p["age"]}')
        os.makedirs(pdir, exist_ok=True)
        for stem, mask in zip(IMAGE_STEMS, STEM_MASK):
            _write(osp.join(pdir, stem + ext), render_face(p, mask, size, rng))
            counts['images'] += 1
        counts['persons'] += 1
    if eval_persons:
        eval_dir = osp.join(out_dir, 'eval', 'images')
        os.makedirs(eval_dir, exist_ok=True)
        rows = []
        for k in range(eval_persons):
            pid = num_persons + k
            rng = np.random.default_rng([seed, pid])
            p = _person(rng, pid)
            for stem, mask in zip(IMAGE_STEMS, STEM_MASK):
                image_id = hashlib.sha1(
                    f'{seed}/{pid}/{stem}'.encode()).hexdigest() + '.jpg'
                _write(osp.join(eval_dir, image_id),
                       render_face(p, mask, size, rng))
                label = int(encode(mask, int(p['gender'] == 'female'),
                                   age_to_label(p['age'])))
                rows.append((image_id, label))
        # the competition's info.csv lists the images in submission order
        # with a placeholder answer; the true labels exist only in the demo
        rows.sort()
        for name, with_ans in (('info.csv', False), ('gt.csv', True)):
            with open(osp.join(out_dir, 'eval', name), 'w', newline='') as f:
                w = csv.writer(f)
                w.writerow(('ImageID', 'ans'))
                for image_id, label in rows:
                    w.writerow((image_id, label if with_ans else 0))
        counts['eval_images'] = len(rows)
    return counts

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
    label_fixes.csv                  (only with mislabel_persons > 0)

``faces='detectable'`` draws faces a face detector (MTCNN) finds, for
``FaceCrop``; ``mislabel_persons`` records some persons with a wrong
gender / swapped mask files, like the competition's known mistakes, and
writes the corrections for ``MaskDataset(label_fixes=...)``.
"""
import csv
import hashlib
import os
import os.path as osp
from typing import Dict, Sequence

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


def render_detectable_face(p: dict, mask: int, size: int,
                           rng: np.random.Generator,
                           face_scale: float = 1.0) -> np.ndarray:
    """Like :func:`render_face` with the cues a face detector looks for:
    eye whites with pupils, brows, a shaded nose, lips, and a slight blur.
    MTCNN (``FaceCrop``) finds nearly every unmasked face of these at 64 px
    and some masked ones (as on real photos, masks hide half the cues).
    ``face_scale < 1`` draws a smaller face at a random place in the frame,
    so that a face crop changes what the model sees."""
    import cv2
    s = size / 64.
    img = np.empty((size, size, 3), np.float64)
    img[:] = p['bg'] * rng.uniform(0.8, 1.1)
    img = img.astype(np.uint8)
    sc = s * face_scale * rng.uniform(0.9, 1.1)
    room = max(0., (size / 2) - 26 * sc)  # keep the face (+hair) inside
    cx = size / 2 + (rng.uniform(-room, room) if face_scale < 1 else
                     rng.normal(0, 3 * s))
    cy = size / 2 + (rng.uniform(-room, room) if face_scale < 1 else
                     rng.normal(0, 3 * s))
    fw, fh = 17 * sc, 23 * sc

    def pt(x, y):
        return int(round(cx + x * sc)), int(round(cy + y * sc))

    def ax(a, b):
        return max(1, int(round(a * sc))), max(1, int(round(b * sc)))

    lw = max(1, int(round(sc)))
    hair = (np.array((20, 35, 60)) * (1 - p['grey']) +
            np.array((225, 225, 225)) * p['grey'])
    hair = tuple(int(v) for v in np.clip(hair + rng.normal(0, 8, 3), 0, 255))
    if p['hair_len'] > 0.45:
        bottom = -14 + p['hair_len'] * 40
        cv2.rectangle(img, pt(-21, -18), pt(21, bottom), hair, -1)
    skin_v = np.clip(p['skin'] + rng.normal(0, 6, 3), 0, 255)
    skin = tuple(int(v) for v in skin_v)
    shade = tuple(int(v) for v in skin_v * 0.7)
    cv2.ellipse(img, pt(0, 0), (int(fw), int(fh)), 0, 0, 360, skin, -1)
    cv2.ellipse(img, pt(0, -12), (int(fw + 2 * sc), int(13 * sc)), 0, 180,
                360, hair, -1)
    for k in range(p['wrinkles']):  # forehead wrinkles
        y = -8 + 2.2 * k
        cv2.line(img, pt(-8, y), pt(8, y), (70, 90, 120), 1)
    brow = hair if p['grey'] < 0.5 else (60, 60, 60)
    for x in (-7, 7):  # brows, eye whites, pupils
        cv2.line(img, pt(x - 4, -7), pt(x + 3, -7), brow,
                 max(1, int(1.5 * sc)))
        cv2.ellipse(img, pt(x, -3), ax(4, 2), 0, 0, 360, (235, 235, 235), -1)
        cv2.circle(img, pt(x, -3), max(1, int(1.8 * sc)), (30, 30, 30), -1)
    cv2.ellipse(img, pt(0, 5), ax(3, 2), 0, 0, 180, shade, lw)  # nostrils
    cv2.line(img, pt(0, -1), pt(-1, 5), shade, lw)  # nose ridge
    cv2.ellipse(img, pt(0, 13), ax(6, 2), 0, 0, 360, (70, 70, 170), -1)
    if mask != 2:
        colour = MASK_COLOURS[int(rng.integers(len(MASK_COLOURS)))]
        colour = tuple(int(v) for v in np.clip(
            np.array(colour) + rng.normal(0, 10, 3), 0, 255))
        top = (3 if mask == 0 else 10) + rng.normal(0, 1)
        cv2.rectangle(img, pt(-14, top), pt(14, 21), colour, -1)
        cv2.line(img, pt(-14, top), pt(-19, top - 3), colour, 1)
        cv2.line(img, pt(14, top), pt(19, top - 3), colour, 1)
    img = cv2.GaussianBlur(img, (0, 0), 0.8 * s)
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img.astype(np.float64) * rng.uniform(0.85, 1.15) + noise,
                   0, 255).astype(np.uint8)


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
                   seed: int = 0,
                   faces: str = 'flat',
                   face_scale: float = 1.0,
                   mislabel_persons: int = 0,
                   mislabel_kinds: Sequence[str] = ('gender', 'mask')
                   ) -> Dict[str, int]:
    """Write the demo dataset; returns counts of what was written.

    Args:
        out_dir (str): Target folder (created; existing files overwritten).
        num_persons (int): Persons of ``images/`` (7 images each).
        eval_persons (int): Persons of the unlabeled ``eval/`` set, whose
            true labels go to ``eval/gt.csv``.
        size (int): Image side in pixels (>= 32).
        seed (int): Everything (attributes, jitter, noise) derives from it,
            person by person, so the bytes are identical for a seed.
        faces (str): ``'flat'`` (default; the original cartoon, same bytes
            as before) or ``'detectable'`` (:func:`render_detectable_face`,
            for ``FaceCrop``).
        face_scale (float): Face size of ``'detectable'`` faces relative to
            the frame (< 1: smaller, at a random place). Defaults to 1.
        mislabel_persons (int): Persons of ``images/`` recorded with a wrong
            label, like the competition's known mistakes: cycling through
            ``mislabel_kinds``, ``'gender'`` writes the other gender in the
            folder name, ``'mask'`` swaps the ``incorrect_mask`` and
            ``normal`` files. The images show the truth, and
            ``label_fixes.csv`` (for ``MaskDataset(label_fixes=...)``)
            lists the corrections. Defaults to 0.
        mislabel_kinds (Sequence[str]): See ``mislabel_persons``.
    """
    if num_persons < 1 or eval_persons < 0:
        raise ValueError(f'num_persons must be >= 1 and eval_persons >= 0, '
                         f'but got {num_persons}, {eval_persons}')
    if size < 32:
        raise ValueError(f'size must be >= 32, but got {size}')
    if faces not in ('flat', 'detectable'):
        raise ValueError(f"faces must be 'flat' or 'detectable', but got "
                         f'{faces!r}')
    if not 0.3 <= face_scale <= 1:
        raise ValueError(f'face_scale must be in [0.3, 1], but got '
                         f'{face_scale}')
    bad = [k for k in mislabel_kinds if k not in ('gender', 'mask')]
    if not 0 <= mislabel_persons <= num_persons or bad or not mislabel_kinds:
        raise ValueError('mislabel_persons must be in [0, num_persons] and '
                         "mislabel_kinds a non-empty subset of ('gender', "
                         f"'mask'), but got {mislabel_persons}, "
                         f'{mislabel_kinds!r}')

    def render(p, mask, rng):
        if faces == 'flat':
            return render_face(p, mask, size, rng)
        return render_detectable_face(p, mask, size, rng, face_scale)

    # the mislabelled persons: spread over the ids, deterministic per seed
    wrong = {}
    if mislabel_persons:
        picks = np.random.default_rng([seed, 10**6]).choice(
            num_persons, mislabel_persons, replace=False)
        wrong = {int(pid): mislabel_kinds[k % len(mislabel_kinds)]
                 for k, pid in enumerate(sorted(picks))}
    fixes = []
    img_root = osp.join(out_dir, 'images')
    os.makedirs(img_root, exist_ok=True)
    counts = dict(persons=0, images=0, eval_images=0)
    for pid in range(num_persons):
        rng = np.random.default_rng([seed, pid])
        p = _person(rng, pid)
        # the real data mixes extensions; keep a few .png / .jpeg persons
        ext = '.png' if pid % 10 == 3 else '.jpeg' if pid % 13 == 5 else '.jpg'
        gender = p['gender']
        person_id = f'{pid + 1:06d}'
        if wrong.get(pid) == 'gender':
            gender = 'male' if gender == 'female' else 'female'
            fixes.append((person_id, '', p['gender'], ''))
        folder = f'{person_id}_{gender}_Asian_{p["age"]}'
        pdir = osp.join(img_root, folder)
        os.makedirs(pdir, exist_ok=True)
        for stem, mask in zip(IMAGE_STEMS, STEM_MASK):
            if wrong.get(pid) == 'mask' and mask in (1, 2):
                # the file named for one state shows the other
                mask = 3 - mask
                fixes.append(('', f'{folder}/{stem}{ext}', '',
                              ('wear', 'incorrect', 'not_wear')[mask]))
            _write(osp.join(pdir, stem + ext), render(p, mask, rng))
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
                _write(osp.join(eval_dir, image_id), render(p, mask, rng))
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
    if mislabel_persons:
        with open(osp.join(out_dir, 'label_fixes.csv'), 'w',
                  newline='') as f:
            w = csv.writer(f)
            w.writerow(('person_id', 'image', 'gender', 'mask'))
            w.writerows(fixes)
        counts['mislabelled_persons'] = len(wrong)
    return counts

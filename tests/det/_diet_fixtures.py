"""Hand-made fixtures shared by the diet sampler tests."""
import json

CLASSES = ('eye_opened', 'eye_closed', 'mouth_opened', 'mouth_closed',
           'face', 'phone', 'cigar')
EO, EC, MO, MC, FACE, PHONE, CIGAR = range(7)

REFERENCE_RULES = [
    dict(any_of=['cigar', 'phone']),
    dict(all_of=['eye_closed', 'mouth_closed']),
    dict(all_of=['eye_closed', 'mouth_opened']),
    dict(any_of=['mouth_opened'], keep_every=3),
]

# hand-made images -> (instances, which reference rule decides, kept?)
REFERENCE_FIXTURE = [
    ([EO, EO, MC, FACE], 5, False),            # 0 otherwise: drop
    ([EO, EO, MC, FACE, PHONE], 1, True),      # 1 phone
    ([EC, EC, MC, FACE], 2, True),             # 2 eye_closed & mouth_closed
    ([EC, EC, MO, FACE], 3, True),             # 3 eye_closed & mouth_opened
    ([EO, EO, MO, FACE], 4, False),            # 4 mouth_opened match #1
    ([EO, EO, MO, FACE, CIGAR], 1, True),      # 5 cigar wins over rule 4
    ([EO, EO, MO, FACE], 4, False),            # 6 mouth_opened match #2
    ([EO, EO, MO, FACE], 4, True),             # 7 mouth_opened match #3
    ([EC, EC, MO, FACE, PHONE], 1, True),      # 8 phone wins over rule 3
    ([EO, EC, MC, FACE], 2, True),             # 9 one closed eye suffices
    ([FACE], 5, False),                        # 10
    ([EO, EO, MO], 4, False),                  # 11 match #4
    ([EO, EO, MO, FACE], 4, False),            # 12 match #5
    ([MO, EO], 4, True),                       # 13 match #6
    ([], 5, False),                            # 14 no instance at all
]
REFERENCE_SUBSET = [i for i, (_, _, k) in enumerate(REFERENCE_FIXTURE) if k]


class CatIdsDataset:
    """The mmdet protocol in miniature: metainfo + get_cat_ids(idx)."""

    def __init__(self, per_image, classes=CLASSES):
        self.per_image = [list(x) for x in per_image]
        self.metainfo = dict(classes=tuple(classes))

    def __len__(self):
        return len(self.per_image)

    def get_cat_ids(self, idx):
        return list(self.per_image[idx])


def load_cfg(path):
    """Config.fromfile without yapf formatting of the config text.

    mmengine pretty-prints the config with yapf each time the Runner logs,
    dumps or checkpoints it: ~4 s per call for these configs on 2 busy
    cores. mmengine 0.10.7's ``fromfile`` ignores ``format_python_code`` for
    plain Python configs, so rebuild the Config with it off.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    return Config(cfg.to_dict(), cfg_text=cfg.text, filename=cfg.filename,
                  format_python_code=False)


def diet_names(root):
    """The reference rules written out independently from the JSON; image
    file names of the diet subset."""
    coco = json.load(open(root + 'annotations/instances_train.json'))
    cats = {img['id']: set() for img in coco['images']}
    for ann in coco['annotations']:
        cats[ann['image_id']].add(CLASSES[ann['category_id'] - 1])
    kept, mouth = set(), 0
    for img in coco['images']:  # mmdet keeps the JSON's image order
        c = cats[img['id']]
        if not c:
            continue  # filter_empty_gt drops it before the sampler sees it
        if c & {'cigar', 'phone'} or {'eye_closed', 'mouth_closed'} <= c \
                or {'eye_closed', 'mouth_opened'} <= c:
            kept.add(img['file_name'])
        elif 'mouth_opened' in c:
            mouth += 1
            if mouth % 3 == 0:
                kept.add(img['file_name'])
    return kept

"""Reference ``uda`` section (``uda=dict(type='DACS', ...)``) ->
``UDASegmentor`` keys."""
from .base import SectionBase
from .tables import UDA_COPIED, UDA_UNREAD


class UDASection(SectionBase):
    """``_uda`` (mixed into the Converter)."""

    def _uda(self, u):
        u = dict(u)
        self.uda = {}
        utype = u.pop('type', None)
        if utype != 'DACS':
            self._reject('uda.type', utype,
                         "only 'DACS' (self-training) is implemented")
        else:
            self._map("uda.type='DACS'", "model.type='UDASegmentor'")
        for k in UDA_COPIED:
            if k not in u:
                continue
            v = u.pop(k)
            if k == 'imnet_feature_dist_scale_min_ratio' and v is None:
                fd_on = u.get('imnet_feature_dist_lambda', 0) or \
                    self.uda.get('imnet_feature_dist_lambda', 0)
                classes = u.get('imnet_feature_dist_classes',
                                self.uda.get('imnet_feature_dist_classes'))
                if fd_on and classes is not None:
                    self._reject(f'uda.{k}', v, 'needs a number with the '
                                 'feature distance on a class subset')
                else:
                    # the reference reads it only to downscale the labels
                    # for a class-masked feature distance
                    self._ignore(f'uda.{k}', v, 'ignored (no effect: feature '
                                 'distance off or on every class)')
                continue
            if k == 'mask_generator' and v is not None:
                v = dict(v)
                v.pop('_delete_', None)
            self.uda[k] = v
            self._map(f'uda.{k}', f'model.{k}')
        if 'debug_img_interval' in u:
            self.uda['vis_interval'] = u.pop('debug_img_interval')
            self._map('uda.debug_img_interval', 'model.vis_interval')
        if 'mask_mode' in self.uda and self.uda['mask_mode'] is None and \
                self.uda.get('mask_lambda', 0):
            # reference: mask_mode=None is the MIC switch, whatever the
            # weight; mmplugins: mask_lambda=0 is (mask_mode=None with
            # mask_lambda>0 is an error there)
            self.uda['mask_lambda'] = 0
            self._map('uda.mask_mode=None (with mask_lambda>0)',
                      'model.mask_lambda=0 (MIC off)')
        if 'source_only' in u:
            v = u.pop('source_only')
            if v:
                # reference: no teacher, no pseudo-labels, no mix; MIC (when
                # mask_mode is set) masks the source images against their
                # labels ("MIC for supervised training", MIC exp 85)
                self.uda['source_only'] = True
                self._map('uda.source_only=True', 'model.source_only=True')
            else:
                self._ignore('uda.source_only', v, 'ignored (no effect)')
        if 'print_grad_magnitude' in u:
            v = u.pop('print_grad_magnitude')
            if v:
                self._reject('uda.print_grad_magnitude', v,
                             'mmplugins does not print gradient magnitudes')
            else:
                self._ignore('uda.print_grad_magnitude', v,
                             'ignored (no effect)')
        for k in list(u):
            if k in UDA_UNREAD:
                self._ignore(f'uda.{k}', u.pop(k),
                             f'ignored (no effect: {UDA_UNREAD[k]})')
        self._leftover(u, 'uda')

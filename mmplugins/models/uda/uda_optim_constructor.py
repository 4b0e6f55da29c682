"""Optimizer constructor that sees only the UDA student's parameters."""
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor

from mmplugins.registry import register_module


@register_module('optim_wrapper_constructors')
class UDAOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` over ``model.student`` only.

    A :class:`~mmplugins.models.uda.UDASegmentor` also holds the EMA teacher
    and the frozen ImageNet copy; their parameters never receive gradients.
    The stock constructor with a ``paramwise_cfg`` walks them too and logs a
    warning for every one of them; this constructor hands the optimizer just
    the student, so ``paramwise_cfg`` keys (``'head'``, ``'norm'``, ...)
    match the student's parameter names as in a plain mmseg config. Models
    without a ``student`` are handled exactly like the default constructor.

    Use: ``optim_wrapper=dict(constructor='UDAOptimWrapperConstructor', ...)``.
    """

    def __call__(self, model):
        if is_model_wrapper(model):
            model = model.module
        student = getattr(model, 'student', None)
        if student is not None:
            model = student.module if is_model_wrapper(student) else student
        return super().__call__(model)

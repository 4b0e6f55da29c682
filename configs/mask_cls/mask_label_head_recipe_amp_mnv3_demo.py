# The recipe with automatic mixed precision (fp16 autocast + dynamic loss
# scaling) on top of the gradient accumulation. AmpOptimWrapper needs a GPU.
_base_ = ['./mask_label_head_recipe_mnv3_demo.py']

optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')

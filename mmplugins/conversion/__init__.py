"""Conversion of the reference implementations' files (DAFormer / HRDA /
MIC configs and checkpoints, SegFormer's MiT weights) into mmplugins'."""

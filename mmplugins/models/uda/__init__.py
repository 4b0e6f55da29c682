"""Unsupervised domain adaptation (DACS / DAFormer / MIC) for mmseg 1.x."""

"""mmplugins.models.segmentors"""

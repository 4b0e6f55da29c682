"""mmplugins.datasets.transforms"""

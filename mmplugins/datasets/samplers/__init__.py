"""mmplugins.datasets.samplers"""

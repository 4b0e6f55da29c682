"""mmplugins.datasets"""

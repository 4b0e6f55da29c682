"""mmplugins.utils"""

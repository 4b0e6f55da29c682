"""mmplugins.models"""

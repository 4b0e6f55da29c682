"""mmplugins.models.uda"""

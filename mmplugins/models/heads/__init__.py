"""mmplugins.models.heads"""

"""mmplugins.models.losses"""

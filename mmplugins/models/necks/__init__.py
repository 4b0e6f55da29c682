"""mmplugins.models.necks"""

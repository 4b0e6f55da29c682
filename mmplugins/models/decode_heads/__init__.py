"""mmplugins.models.decode_heads"""

"""mmplugins.engine.hooks"""

"""mmplugins.engine"""

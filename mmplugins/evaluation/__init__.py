"""mmplugins.evaluation"""

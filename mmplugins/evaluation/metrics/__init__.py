"""mmplugins.evaluation.metrics"""

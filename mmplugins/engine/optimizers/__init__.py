"""mmplugins.engine.optimizers"""

"""Synthetic data: text and line images for training the recogniser, and device printouts with exact
ground truth for the template engine."""

"""acgan: train, sample, evaluate and explain an Auxiliary Classifier GAN."""

__version__ = "0.1.0"

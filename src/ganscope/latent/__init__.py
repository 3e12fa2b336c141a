"""Exploring a trained generator's latent space: generate from chosen z, edit and interpolate,
probe what each dimension controls, and check the seeds' claims about it."""

"""Faces (issue 8): the shipped CelebA attribute classifier that labels generated faces and
measures latent edits (:mod:`ganscope.faces.attributes`), and how it is trained
(:mod:`ganscope.faces.train_attributes`)."""

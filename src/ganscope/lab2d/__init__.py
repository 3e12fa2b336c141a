"""The 2-D lab: GAN objectives x optimisers on point data, measured over seeds."""

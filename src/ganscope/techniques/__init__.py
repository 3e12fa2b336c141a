"""Techniques that change how the one loop trains, not what it trains: spectral normalisation,
an exponential moving average of G, R1/R2 gradient penalties, differentiable augmentation of
D's inputs. Each is one module and one option of ``tech`` in the run's config; they work on
any image model, registered or the user's, because they act on modules and tensors only."""

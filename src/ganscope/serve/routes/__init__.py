"""The routes of ``ganscope serve``, one :class:`fastapi.APIRouter` per area of the page.

``page`` (the page, its static files' neighbours ``/api/info`` and ``/api/metrics/labels``),
``runs`` (list, detail, curves, streams, sample and figure PNGs), ``latent`` (the latent
explorer) and ``lab`` (the live 2-D lab). Each reads the app's
:class:`~ganscope.serve.state.ServeState` through a dependency; the guards and the error shape
are not here but in :mod:`ganscope.serve.guard` and :mod:`ganscope.serve.responses`, so every
route gets them. ``create_app`` includes the routers.
"""

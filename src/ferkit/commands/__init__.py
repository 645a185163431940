"""Every ``ferkit`` command, one module each (train, evaluate, export, data, predict, video, webcam, serve, site,
models) and options.py, the shared flags. The doors: may import every room, lazily (in the command) for heavy ones.

Each module has ``add_parser(sub)``, which adds its sub-command and sets ``func``; parsing imports no torch.
BUILDERS lists them in the order ``ferkit --help`` shows them.
"""

from . import data, evaluate, export, models, predict, serve, site, train, video, webcam

BUILDERS: list = [train.add_parser, evaluate.add_parser, export.add_parser, data.add_parser, predict.add_parser,
                  video.add_video_parser, webcam.add_webcam_parser, serve.add_parser, site.add_parser,
                  models.add_parser]

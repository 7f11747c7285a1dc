"""Images and learning, for trainer plugins and the core: image decoding and checks, backbones
and their weights, devices, metrics, calibration, evaluation reports, plots and heat maps."""

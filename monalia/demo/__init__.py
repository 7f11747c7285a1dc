"""The demo: a small drawn collection with planted errors (`collection`), for `monalia demo`."""

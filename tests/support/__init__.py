"""Offline stand-ins and local services shared by the tests and the demo.

Everything here is named as a stand-in (`kdt-standin/...` images, banners in
their output) and is only ever used when a test or `--offline` asks for it.
"""

"""Load tests for the reference service: Locust journeys, load shapes, the CI gate and the benchmark.

Modules that import Locust (``locustfile``) run only inside a Locust process, because Locust
monkey-patches the standard library with gevent. Everything else here is plain Python that the
runner, the tests and the benchmark import freely.
"""

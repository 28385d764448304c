# Shared harness for every suite in the repo: real servers on free loopback ports.
pytest_plugins = ["testsupport.fixtures"]

"""Test harness shared by every test suite: real servers on free loopback ports."""

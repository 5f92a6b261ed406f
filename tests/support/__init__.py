"""Shared fakes and helpers of the test suite (imported by tests, conftest and tools); no tests here."""

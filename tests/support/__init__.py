"""Test support shared by several test modules (fakes of services the pipeline talks to)."""

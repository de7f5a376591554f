"""Models and job functions the tests load."""

"""Models: built by the domain issue."""

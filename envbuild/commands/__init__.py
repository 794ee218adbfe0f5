"""One module per command; each registers itself on envbuild.cli.main."""

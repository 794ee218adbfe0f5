"""Files that run inside another interpreter (the inspected training environment, the
image's venv): standard library only, Python 3.7 syntax, no import of envbuild. Each is
read as a file and run there; ``introspect`` is also imported here for this interpreter."""

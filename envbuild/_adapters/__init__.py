"""Adapters: the only modules that know an outside tool's command line, API or file
format quirks (MLflow here; uv, pip and Docker move here next)."""

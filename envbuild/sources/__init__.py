"""Where a model lives: a local folder, ``file://``, ``runs:/``, ``models:/`` or an
artifact-store URI, turned into a local model folder.

``materialize(location)`` returns a ``ModelSource``: the local ``path`` to read, the URI
(credentials masked), and what it resolved to (run id, registered name and version, alias).
Local paths and ``file://`` return at once and never import MLflow. Everything else goes
through MLflow's own client and artifact download (``envbuild._adapters.mlflow``, the optional extra
``envbuild[mlflow]``) into a download cache::

    $ENVBUILD_CACHE_DIR  or  $XDG_CACHE_HOME/envbuild/models  or  ~/.cache/envbuild/models
        runs/<run-id>-<hash>/          one entry per resolved model version
            source.json                what it is (written last, before the rename)
            files/...                  what MLflow downloaded
        models/<name>-v<version>-<hash>/
        .tmp-<pid>-<random>/           a download under way

The cache key is the resolved version: the tracking server plus run id and artifact path,
or the registry plus name and version (an alias or ``latest`` is resolved first, so it is
cached under the version it points to). A download goes into a temporary folder inside the
cache and is renamed into place only when complete: a failed or interrupted download leaves
nothing behind. Artifact-store URIs (``s3://...``) carry no version and are downloaded
again each time.

Credentials in URIs (``https://user:token@host``, signed query strings) never reach a
message, a provenance field, a label or the cache: ``envbuild._redact.redact_uri`` masks them.
"""

from envbuild.errors import SourceError
from envbuild.sources.cache import cache_root, server_id
from envbuild.sources.materialize import CODES, LABEL_PREFIX, ModelSource, materialize
from envbuild.sources.uri import Kind, ModelRef, parse

__all__ = [
    "CODES",
    "LABEL_PREFIX",
    "Kind",
    "ModelRef",
    "ModelSource",
    "SourceError",
    "cache_root",
    "materialize",
    "parse",
    "server_id",
]

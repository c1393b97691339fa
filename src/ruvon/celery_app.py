"""The Celery application of Ruvon's workers.

Start workers with the stock Celery command, from your project directory (its ``config/`` and
step modules importable)::

    celery -A ruvon.celery_app worker -Q default --concurrency=4

or ``ruvon worker --celery``. Everything comes from the environment: ``CELERY_BROKER_URL``
(default ``redis://127.0.0.1:6379/0``), ``CELERY_RESULT_BACKEND`` (none by default),
``RUVON_DATABASE_URL``, ``RUVON_CONFIG_DIR``, ``RUVON_DB_POOL_MIN_SIZE`` /
``RUVON_DB_POOL_MAX_SIZE``, ``RUVON_HEARTBEAT_SECONDS``, ``RUVON_CELERY_CLAIM_SECONDS`` and
``RUVON_CELERY_VISIBILITY_TIMEOUT``. Each worker process builds its ``WorkflowBuilder`` and
providers when it starts and closes them when it stops (docs/deployment.md).
"""

from __future__ import annotations

import sys

from ruvon._celery_worker import install
from ruvon.implementations.execution.celery import make_celery_app

__all__ = ["app"]

if "" not in sys.path:  # the working directory (the project) is importable, as for ``ruvon``
    sys.path.insert(0, "")

app = make_celery_app()
runtime = install(app)

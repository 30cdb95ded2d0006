"""Alembic environment of the sweep queue (our own database, our own ``alembic_version``).

:class:`tuner.store.SweepStore` runs it on open, inside its own transaction, by
passing a connection in ``config.attributes["connection"]``. For a new revision,
run the Alembic CLI against a scratch database, e.g.::

    alembic -c tuner/store/alembic.ini -x url=sqlite:////tmp/scratch.db upgrade head
    alembic -c tuner/store/alembic.ini -x url=sqlite:////tmp/scratch.db revision --autogenerate -m "..."
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from tuner.store._models import Base

config = context.config


def _migrate(connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("tuner.store migrations run online only; drop --sql")

connection = config.attributes.get("connection")
if connection is not None:
    _migrate(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise RuntimeError("no database to migrate: pass -x url=<SQLAlchemy URL> (SweepStore migrates its own on open)")
    with create_engine(url).connect() as cli_connection:
        _migrate(cli_connection)
        cli_connection.commit()

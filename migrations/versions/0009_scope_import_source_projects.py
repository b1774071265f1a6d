"""scope: give project-less import sources the project they fed

Sources are now seen only through their project. A file source made before that had none: it
takes the project of its imports when they all went to one project; a source shared by several
projects keeps none (only users who see every project see it).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:30:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        UPDATE import_sources
        SET project_id = (
            SELECT min(b.project_id) FROM import_batches b WHERE b.source_id = import_sources.id
        )
        WHERE project_id IS NULL
          AND (
            SELECT count(DISTINCT b.project_id) FROM import_batches b
            WHERE b.source_id = import_sources.id
          ) = 1
        """
    )


def downgrade():
    # Which sources had no project before is not recorded; the projects stay (harmless).
    pass
